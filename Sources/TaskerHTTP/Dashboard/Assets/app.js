"use strict";
// The dashboard: one page per view, chosen by the address's #fragment, each drawn from the
// JSON API and kept current by its update streams.

const App = (() => {
  const main = document.getElementById("main");
  let session = { auth: false, may: [] };
  let leaving = [];          // what the current view must stop when another is shown
  const RESOLVABLE = new Set(["PENDING", "ENQUEUED", "IN_PROGRESS", "ERROR", "WAITING_FOR_RETRY"]);
  const FINISHED_TASK = new Set(["COMPLETE", "ERROR", "CANCELLED", "RESOLVED_MANUALLY"]);
  const TASK_STATUSES = ["PENDING", "IN_PROGRESS", "COMPLETE", "ERROR", "CANCELLED", "RESOLVED_MANUALLY"];

  // ---- small helpers -----------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
    return node;
  }
  const status = (s) => (s || "UNSPECIFIED").replace(/^(TASK|STEP)_STATUS_/, "");
  const badge = (s) => h("span", { class: "badge s-" + status(s), text: status(s) });
  const may = (method) => session.may.includes(method);
  function when(ts) {
    if (!ts) return "";
    const d = new Date(ts);
    if (isNaN(d)) return ts;
    const time = d.toLocaleTimeString(undefined, { hour12: false });
    return d.toDateString() === new Date().toDateString() ? time : d.toLocaleDateString() + " " + time;
  }
  function ago(ts) {
    if (!ts) return "";
    const s = Math.round((Date.now() - new Date(ts)) / 1000);
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  }
  const json = (v) => JSON.stringify(v, null, 2);

  function say(text, ok) {
    const box = document.getElementById("message");
    document.getElementById("message-text").textContent = text;
    box.classList.toggle("ok", !!ok);
    box.hidden = false;
  }
  function refused(error) {
    if (error instanceof Api.Refusal && error.status === 401) { askForToken(error.message); return; }
    say(error instanceof Api.Refusal ? `${error.code}: ${error.message}` : String(error));
  }
  document.getElementById("message-close").addEventListener("click", () => { document.getElementById("message").hidden = true; });

  function confirmed(text, ok = "Yes") {
    const dialog = document.getElementById("confirm-dialog");
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-ok").textContent = ok;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
  }

  // ---- the token -----------------------------------------------------------------------
  function askForToken(problem) {
    const dialog = document.getElementById("token-dialog");
    document.getElementById("token-error").textContent = problem || "";
    if (!dialog.open) dialog.showModal();
    document.getElementById("token-input").focus();
  }
  document.getElementById("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = document.getElementById("token-input").value.trim();
    Api.setToken(value);
    try {
      await loadSession();
      document.getElementById("token-dialog").close();
      document.getElementById("token-input").value = "";
      show();
    } catch (error) {
      Api.setToken(null);
      document.getElementById("token-error").textContent = error.message;
    }
  });
  document.getElementById("sign-out").addEventListener("click", () => { Api.setToken(null); location.reload(); });

  async function loadSession() {
    session = await Api.get("session");
    const who = document.getElementById("who");
    who.textContent = session.auth ? `${session.name} (${session.role})` : "";
    document.getElementById("sign-out").hidden = !session.auth;
  }

  // ---- views ---------------------------------------------------------------------------
  function leave() { leaving.forEach((stop) => stop()); leaving = []; }

  function route() {
    const hash = location.hash.replace(/^#\/?/, "") || "tasks";
    const [path, search] = hash.split("?");
    const parts = path.split("/").map(decodeURIComponent);
    return { page: parts[0], id: parts[1], params: new URLSearchParams(search || "") };
  }

  async function show() {
    leave();
    document.getElementById("message").hidden = true;
    const where = route();
    for (const link of document.querySelectorAll("nav a")) {
      if (link.dataset.page === (where.page === "task" ? "tasks" : where.page)) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const view = { tasks: tasksView, task: taskView, templates: templatesView, workers: workersView, queues: queuesView, schedules: schedulesView }[where.page];
    if (!view) { main.replaceChildren(h("h1", { text: "Not here" }), h("p", {}, h("a", { href: "#/tasks", text: "The tasks" }))); return; }
    try {
      await view(where);
    } catch (error) {
      refused(error);
      if (!main.childElementCount || main.querySelector(".muted")) main.replaceChildren(h("h1", { text: "Could not load this page" }));
    }
  }

  // Tasks: newest first, filters, paging, live rows.
  async function tasksView({ params }) {
    const filter = { name: params.get("name") || "", status: params.get("status") || "", tag: params.get("tag") || "" };
    const tokens = (params.get("pages") || "").split(",").filter(Boolean);
    const pageToken = tokens[tokens.length - 1] || "";
    const [list, templates] = await Promise.all([
      Api.get("tasks" + Api.query({ name: filter.name, status: filter.status, tag: filter.tag, page_size: 25, page_token: pageToken })),
      Api.get("templates" + Api.query({ page_size: 200 })).catch(() => ({ templates: [] })),
    ]);
    const names = [...new Set((templates.templates || []).map((t) => t.name))].sort();
    const go = (next) => { location.hash = "#/tasks" + Api.query(Object.assign({}, filter, next)); };

    const nameSelect = h("select", { id: "filter-name", "aria-label": "Template" }, h("option", { value: "", text: "any template" }),
      names.map((n) => h("option", { value: n, text: n, selected: n === filter.name })));
    const statusSelect = h("select", { id: "filter-status", "aria-label": "Status" }, h("option", { value: "", text: "any status" }),
      TASK_STATUSES.map((s) => h("option", { value: s, text: s, selected: s === filter.status })));
    const tagInput = h("input", { id: "filter-tag", type: "text", value: filter.tag, placeholder: "tag", "aria-label": "Tag" });
    const idInput = h("input", { id: "task-search", type: "search", placeholder: "task id", "aria-label": "Find a task by id", spellcheck: "false" });
    const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); go({ name: nameSelect.value, status: statusSelect.value, tag: tagInput.value.trim() }); } },
      h("div", {}, h("label", { for: "filter-name", text: "Template" }), nameSelect),
      h("div", {}, h("label", { for: "filter-status", text: "Status" }), statusSelect),
      h("div", {}, h("label", { for: "filter-tag", text: "Tag" }), tagInput),
      h("button", { id: "filter-apply", type: "submit", text: "Filter" }),
      h("div", {}, h("label", { for: "task-search", text: "Open by id" }), idInput),
      h("button", { type: "button", class: "quiet", text: "Open", onclick: () => { const id = idInput.value.trim(); if (id) location.hash = "#/task/" + encodeURIComponent(id); } }));
    idInput.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); const id = idInput.value.trim(); if (id) location.hash = "#/task/" + encodeURIComponent(id); } });

    const tasks = list.tasks || [];
    const rows = new Map();
    const body = h("tbody", { id: "task-rows" });
    const counts = h("div", { class: "counts", id: "task-counts", "aria-label": "Tasks on this page by status" });
    function countStatuses() {
      const by = {};
      for (const row of rows.values()) by[row.status] = (by[row.status] || 0) + 1;
      counts.replaceChildren(...Object.keys(by).sort().map((s) => h("span", {}, badge(s), " ", String(by[s]))));
    }
    function row(task) {
      const cell = h("td", { class: "status" }, badge(task.status));
      const updated = h("td", { class: "updated", text: when(task.updated_at) });
      const tr = h("tr", { "data-task-id": task.task_id },
        h("td", {}, h("a", { href: "#/task/" + task.task_id, class: "mono", text: task.task_id.slice(0, 8) })),
        h("td", { text: `${task.name} ${task.version || ""}` }), cell, updated,
        h("td", { class: "hide-narrow", text: (task.tags || []).join(", ") }),
        h("td", { class: "hide-narrow", text: when(task.created_at) }));
      rows.set(task.task_id, { tr, cell, updated, status: status(task.status) });
      return tr;
    }
    tasks.forEach((t) => body.append(row(t)));
    countStatuses();
    const table = h("div", { class: "scroll" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", { text: "Task" }), h("th", { text: "Template" }), h("th", { text: "Status" }), h("th", { text: "Updated" }),
        h("th", { class: "hide-narrow", text: "Tags" }), h("th", { class: "hide-narrow", text: "Created" }))), body));
    const pager = h("div", { class: "pager" },
      h("button", { type: "button", class: "quiet", id: "page-newer", text: "Newer", disabled: tokens.length === 0,
        onclick: () => go({ pages: tokens.slice(0, -1).join(",") }) }),
      h("button", { type: "button", class: "quiet", id: "page-older", text: "Older", disabled: !list.next_page_token,
        onclick: () => go({ pages: tokens.concat([list.next_page_token]).join(",") }) }),
      h("span", { class: "muted", id: "live-state" }));
    main.replaceChildren(h("h1", { text: "Tasks" }), form, counts,
      tasks.length ? table : h("p", { class: "muted", id: "no-tasks", text: "No tasks match." }), pager);

    // Live: a row changes in place, and on the first page a new task joins the top (the
    // list is read again, at most once a second). The stream has no history to resume from,
    // so the list is also read again once the stream is live: nothing that changed between
    // the first read and the stream's start is missed.
    const firstPage = tokens.length === 0;
    const listQuery = "tasks" + Api.query({ name: filter.name, status: filter.status, tag: filter.tag, page_size: 25, page_token: pageToken });
    function setStatus(shown, taskStatus) {
      if (taskStatus === "UNSPECIFIED" || taskStatus === shown.status) return;
      shown.status = taskStatus;
      shown.cell.replaceChildren(badge(taskStatus));
      shown.tr.classList.remove("changed"); void shown.tr.offsetWidth; shown.tr.classList.add("changed");
      countStatuses();
    }
    let reload = null, lastRead = 0;
    function readAgain() {
      if (reload) return;
      reload = setTimeout(async () => {
        lastRead = Date.now();
        try {
          const fresh = await Api.get(listQuery);
          reload = null;
          const table = document.getElementById("task-rows");
          const added = [];
          for (const task of fresh.tasks || []) {
            const shown = rows.get(task.task_id);
            if (shown) { shown.updated.textContent = when(task.updated_at); setStatus(shown, status(task.status)); }
            else if (firstPage) added.push(row(task));
          }
          if (added.length && table) {
            table.prepend(...added);
            while (table.rows.length > 25) { const last = table.rows[table.rows.length - 1]; rows.delete(last.dataset.taskId); last.remove(); }
            countStatuses();
          } else if (added.length) {
            show();
          }
        } catch (_) { reload = null; }
      }, Math.max(0, 1000 - (Date.now() - lastRead)));
    }
    const stream = Api.follow("updates", {
      resume: false,
      onState: (state) => {
        const s = document.getElementById("live-state");
        if (s) s.textContent = state;
        if (state === "live") readAgain();
      },
      onUpdate: (update) => {
        const shown = rows.get(update.task_id);
        if (!shown) { if (firstPage) readAgain(); return; }
        shown.updated.textContent = when(update.occurred_at);
        setStatus(shown, status(update.task_status));
      },
    });
    leaving.push(() => { stream.stop(); if (reload) clearTimeout(reload); });
  }

  // Task: DAG, steps, history, annotations, actions; live.
  async function taskView({ id }) {
    let task = await Api.get("tasks/" + encodeURIComponent(id));
    const steps = new Map((task.steps || []).map((s) => [s.name, s]));
    const stepRows = new Map();
    let selected = null;
    let afterAction = () => {};

    const dag = Dag.draw((task.steps || []).map((s) => ({ name: s.name, status: status(s.status), depends_on: s.depends_on || [] })),
      (name) => select(name), `Steps of task ${task.task_id}`);
    const head = h("h1", {}, h("span", { text: `${task.name} ${task.version || ""}` }), h("span", { id: "task-status" }, badge(task.status)));
    const cancel = may("CancelTask") ? h("button", { id: "cancel-task", type: "button", class: "danger", text: "Cancel task",
      onclick: () => act(`Cancel task ${task.task_id}? Its unfinished steps stop.`, "Cancel task", () => Api.post(`tasks/${task.task_id}:cancel`, { reason: "cancelled from the dashboard" })) }) : null;
    const facts = h("dl", { class: "facts", id: "task-facts" });
    function fillFacts() {
      facts.replaceChildren(
        h("dt", { text: "Task" }), h("dd", { class: "mono", text: task.task_id }),
        h("dt", { text: "Created" }), h("dd", { text: when(task.created_at) }),
        h("dt", { text: "Updated" }), h("dd", { text: when(task.updated_at) }),
        h("dt", { text: "Finished" }), h("dd", { text: when(task.completed_at) || "—" }),
        h("dt", { text: "Initiator" }), h("dd", { text: [task.initiator, task.source_system].filter(Boolean).join(" · ") || "—" }),
        h("dt", { text: "Reason" }), h("dd", { text: task.reason || "—" }),
        h("dt", { text: "Tags" }), h("dd", { text: (task.tags || []).join(", ") || "—" }),
        h("dt", { text: "Context" }), h("dd", {}, h("details", {}, h("summary", { text: "show" }), h("pre", { text: json(task.context || {}) }))));
      if (cancel) cancel.hidden = FINISHED_TASK.has(status(task.status));
    }
    fillFacts();

    const stepBody = h("tbody", {});
    function stepRow(step) {
      const cells = {
        status: h("td", { class: "status" }), attempts: h("td", { class: "attempts" }), error: h("td", { class: "err" }),
        next: h("td", { class: "next hide-narrow" }), timing: h("td", { class: "timing hide-narrow" }), results: h("td", { class: "results" }),
        actions: h("td", { class: "actions" }),
      };
      const tr = h("tr", { "data-step": step.name }, h("td", {}, h("strong", { text: step.name }), h("div", { class: "muted mono", text: step.handler })),
        cells.status, cells.attempts, cells.error, cells.next, cells.timing, cells.results, cells.actions);
      const entry = { tr, cells, shown: {} };
      stepRows.set(step.name, entry);
      fillStep(entry, step);
      return tr;
    }
    // Writes only what changed, so a row keeps its size and place while it updates.
    function setCell(entry, key, make, value) {
      if (entry.shown[key] === value) return;
      entry.shown[key] = value;
      entry.cells[key].replaceChildren(...[].concat(make()));
    }
    function fillStep(entry, step) {
      const s = status(step.status);
      setCell(entry, "status", () => badge(s), s);
      setCell(entry, "attempts", () => `${step.attempts || 0} / ${(step.retry_limit || 0)}`, `${step.attempts}/${step.retry_limit}`);
      const err = step.last_error ? `attempt ${step.last_error.attempt || "?"}: ${step.last_error.message}` : "";
      setCell(entry, "error", () => err, err);
      const next = step.waiting_reason || (step.next_attempt_at ? "next attempt " + when(step.next_attempt_at) : "");
      setCell(entry, "next", () => next, next);
      const timing = [step.last_attempted_at ? "tried " + when(step.last_attempted_at) : "", step.completed_at ? "done " + when(step.completed_at) : ""].filter(Boolean).join(" · ");
      setCell(entry, "timing", () => timing, timing);
      const results = step.results ? json(step.results) : "";
      setCell(entry, "results", () => results ? h("details", {}, h("summary", { text: "results" }), h("pre", { text: results })) : "", results);
      const taskOpen = status(task.status) !== "CANCELLED";
      const actions = [may("RetryStep") && s === "ERROR" && taskOpen ? "retry" : "", may("ResolveStep") && RESOLVABLE.has(s) && taskOpen ? "resolve" : ""].join(",");
      setCell(entry, "actions", () => [
        actions.includes("retry") ? h("button", { type: "button", "data-action": "retry", "aria-label": `Retry step ${step.name}`, text: "Retry",
          onclick: () => act(`Retry step ${step.name}? It runs again from its first attempt.`, "Retry", () => Api.post(`tasks/${task.task_id}/steps/${encodeURIComponent(step.name)}:retry`, {})) }) : "",
        actions.includes("resolve") ? h("button", { type: "button", class: "quiet", "data-action": "resolve", "aria-label": `Resolve step ${step.name}`, text: "Resolve",
          onclick: () => resolve(step.name) }) : "",
      ], actions);
    }
    (task.steps || []).forEach((s) => stepBody.append(stepRow(s)));

    const history = h("tbody", { id: "history-rows" });
    const annotations = h("div", { id: "annotations" });
    function fillAnnotations() {
      const list = task.annotations || [];
      annotations.replaceChildren(list.length ? h("table", {}, h("tbody", {}, list.map((a) => h("tr", {},
        h("td", { text: a.type }), h("td", { text: a.step_name || "" }), h("td", {}, h("pre", { text: json(a.annotation || {}) })), h("td", { class: "hide-narrow", text: when(a.created_at) }))))) :
        h("p", { class: "muted", text: "None." }));
    }
    fillAnnotations();
    const liveState = h("span", { class: "muted", id: "live-state" });
    main.replaceChildren(head, h("div", { class: "buttons toolbar" }, liveState, cancel), h("div", { class: "panel" }, facts),
      h("h2", { text: "Steps" }), h("div", { class: "dag-box" }, dag.svg), Dag.legend(),
      h("div", { class: "scroll" }, h("table", { class: "steps", id: "steps" },
        h("thead", {}, h("tr", {}, ["Step", "Status", "Attempts", "Last error", "Waiting / next", "Timing", "Results", ""].map((t, i) =>
          h("th", { class: i === 4 || i === 5 ? "hide-narrow" : undefined, text: t })))), stepBody)),
      h("h2", { text: "History" }), h("div", { class: "history scroll" }, h("table", { class: "history-table" }, h("thead", {}, h("tr", {},
        ["#", "Step", "Change", "Attempt", "Detail", "At"].map((t) => h("th", { text: t })))), history)),
      h("h2", { text: "Annotations" }), annotations);

    function select(name) {
      if (selected) selected.tr.classList.remove("selected");
      selected = stepRows.get(name);
      if (selected) { selected.tr.classList.add("selected"); selected.tr.scrollIntoView({ block: "nearest" }); }
    }

    async function act(question, ok, request) {
      if (!(await confirmed(question, ok))) return;
      try {
        const fresh = await request();
        say("Done.", true);
        afterAction();
        refreshFrom(fresh);
      } catch (error) { refused(error); }
    }
    async function resolve(name) {
      const dialog = document.getElementById("resolve-dialog");
      const area = document.getElementById("resolve-results"), problem = document.getElementById("resolve-error"), send = document.getElementById("resolve-send");
      document.getElementById("resolve-title").textContent = `Resolve step ${name}`;
      area.value = "{}";
      document.getElementById("resolve-reason").value = "";
      const check = () => {
        let message = "";
        try {
          const value = JSON.parse(area.value);
          if (value === null || typeof value !== "object" || Array.isArray(value)) message = "The results must be a JSON object: { \"key\": value, … }";
        } catch (error) { message = "Not JSON: " + error.message; }
        problem.textContent = message;
        send.disabled = !!message;
        area.setAttribute("aria-invalid", message ? "true" : "false");
      };
      area.oninput = check;
      check();
      dialog.returnValue = "";
      dialog.showModal();
      await new Promise((r) => dialog.addEventListener("close", r, { once: true }));
      if (dialog.returnValue !== "ok") return;
      try {
        const fresh = await Api.post(`tasks/${task.task_id}/steps/${encodeURIComponent(name)}:resolve`,
          { results: JSON.parse(area.value), reason: document.getElementById("resolve-reason").value });
        say(`Step ${name} resolved.`, true);
        afterAction();
        refreshFrom(fresh);
      } catch (error) { refused(error); }
    }

    // A read older than the updates already shown (a response that crossed them on the way)
    // would turn the page back: it is set aside and the task read again.
    function refreshFrom(fresh) {
      const sequence = Number(fresh.last_sequence || 0);
      if (sequence < shownSequence) { readAgain(); return; }
      shownSequence = sequence;
      task = fresh;
      for (const s of fresh.steps || []) {
        steps.set(s.name, s);
        dag.setStatus(s.name, status(s.status));
        const entry = stepRows.get(s.name);
        if (entry) fillStep(entry, s);
      }
      document.getElementById("task-status").replaceChildren(badge(fresh.status));
      fillFacts();
      fillAnnotations();
    }

    // Updates arrive from one stream: the stored history first (for the History table), then
    // live ones. Those past the read above also change the steps, and a quiet moment after
    // them the task is read again for what an update does not carry (next attempt, waiting
    // reason, annotations).
    const known = Number(task.last_sequence || 0);
    let pending = [], scheduled = false, refetch = null, shownSequence = known;
    function readAgain() {
      clearTimeout(refetch);
      refetch = setTimeout(() => Api.get("tasks/" + encodeURIComponent(task.task_id)).then(refreshFrom).catch(() => {}), 400);
    }
    function historyRow(u) {
      const detail = u.error ? u.error.message : u.results ? JSON.stringify(u.results) : "";
      return h("tr", {}, h("td", { text: String(u.sequence) }), h("td", { text: u.step_name || "(task)" }),
        h("td", {}, u.previous_status ? status(u.previous_status) + " → " : "", status(u.status)),
        h("td", { text: u.attempt ? String(u.attempt) : "" }), h("td", { class: "mono", text: detail.length > 200 ? detail.slice(0, 200) + "…" : detail }),
        h("td", { text: when(u.occurred_at) }));
    }
    function apply() {
      scheduled = false;
      const batch = pending;
      pending = [];
      const rows = document.createDocumentFragment();
      let live = false;
      for (const { update: u } of batch) {
        rows.append(historyRow(u));
        if (Number(u.sequence) <= known) continue;
        live = true;
        shownSequence = Math.max(shownSequence, Number(u.sequence));
        const step = steps.get(u.step_name);
        if (step) {
          step.status = u.status;
          if (u.attempt) step.attempts = u.attempt;
          if (u.results) step.results = u.results;
          if (u.error) step.last_error = u.error;
          dag.setStatus(u.step_name, status(u.status));
          const entry = stepRows.get(u.step_name);
          if (entry) fillStep(entry, step);
        }
        if (u.task_status && status(u.task_status) !== status(task.status)) {
          task.status = u.task_status;
          document.getElementById("task-status").replaceChildren(badge(task.status));
          if (cancel) cancel.hidden = FINISHED_TASK.has(status(task.status));
        }
      }
      history.append(rows);
      // Timed to the next frame's start, when this one has been laid out and painted.
      requestAnimationFrame(() => {
        const at = performance.now();
        for (const { received } of batch) performance.measure("tasker-update", { start: received, end: at });
      });
      if (live) readAgain();
    }
    // A stream ends when its task finishes; a Retry or Resolve can set the task going again,
    // and then a new stream goes on from the last update the page had.
    let stream = null, streamEnded = false;
    function follow(after) {
      streamEnded = false;
      stream = Api.follow(`tasks/${encodeURIComponent(task.task_id)}/updates`, {
        after,
        onState: (state, end) => {
          streamEnded = state === "ended";
          liveState.textContent = state === "ended" ? (end && end.code !== "OK" ? `stream ended: ${end.message}` : "finished") : state;
        },
        onUpdate: (update) => {
          // The updates of one read of the stream are applied together, at once; the browser
          // draws them in its next frame.
          pending.push({ update, received: performance.now() });
          if (!scheduled) { scheduled = true; queueMicrotask(apply); }
        },
      });
    }
    follow(0);
    afterAction = () => { if (streamEnded) follow(stream.last); };
    leaving.push(() => { stream.stop(); clearTimeout(refetch); pending = []; });
  }

  async function templatesView() {
    const list = await Api.get("templates" + Api.query({ page_size: 200 }));
    const templates = list.templates || [];
    main.replaceChildren(h("h1", { text: "Templates" }),
      templates.length ? "" : h("p", { class: "muted", text: "No templates are registered." }),
      ...templates.map((t) => h("section", { class: "panel", "data-template": `${t.name}@${t.version}` },
        h("h2", {}, `${t.name} `, h("span", { class: "muted", text: t.version })),
        t.description ? h("p", { text: t.description }) : "",
        h("div", { class: "dag-box" }, Dag.draw((t.steps || []).map((s) => ({ name: s.name, status: "PENDING", depends_on: s.depends_on || [] })), null, `Steps of ${t.name}`).svg),
        h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["Step", "Handler", "Depends on", "Retries", "Timeout"].map((x) => h("th", { text: x })))),
          h("tbody", {}, (t.steps || []).map((s) => h("tr", {}, h("td", { text: s.name }), h("td", { class: "mono", text: s.handler }),
            h("td", { text: (s.depends_on || []).join(", ") }), h("td", { text: s.retryable === false ? "none" : String(s.retry_limit || 0) }),
            h("td", { text: s.timeout_seconds ? s.timeout_seconds + " s" : "" })))))))));
  }

  async function workersView() {
    async function draw() {
      const list = await Api.get("workers");
      const workers = list.workers || [];
      const body = workers.length ? h("div", { class: "scroll" }, h("table", { id: "workers" }, h("thead", {}, h("tr", {},
        ["Worker", "Node", "Handlers", "Slots in use", "Last heartbeat", "Connected"].map((x) => h("th", { text: x })))),
        h("tbody", {}, workers.map((w) => h("tr", { "data-worker": w.worker_id }, h("td", {}, h("strong", { text: w.name || w.worker_id }), w.draining ? " (draining)" : ""),
          h("td", { text: w.node }), h("td", { class: "mono", text: (w.handlers || []).join(", ") }), h("td", { text: `${w.in_flight || 0} / ${w.slots || 0}` }),
          h("td", { text: ago(w.last_heartbeat_at) }), h("td", { text: when(w.connected_at) }))))))
        : h("p", { class: "muted", text: "No workers are connected." });
      main.replaceChildren(h("h1", { text: "Workers" }), body);
    }
    await draw();
    const timer = setInterval(() => draw().catch(refused), 3000);
    leaving.push(() => clearInterval(timer));
  }

  // Queues, and how many steps finished in each 10 s of the last five minutes this page saw.
  async function queuesView() {
    const buckets = new Array(30).fill(0);
    let bucketAt = Math.floor(Date.now() / 10000);
    function roll() {
      const now = Math.floor(Date.now() / 10000);
      while (bucketAt < now) { buckets.shift(); buckets.push(0); bucketAt++; }
    }
    const spark = h("div", {});
    function drawSpark() {
      roll();
      const top = Math.max(1, ...buckets), w = 300, hgt = 48, bar = w / buckets.length;
      const NS = "http://www.w3.org/2000/svg";
      const svg = document.createElementNS(NS, "svg");
      svg.setAttribute("class", "spark"); svg.setAttribute("width", w); svg.setAttribute("height", hgt);
      svg.setAttribute("role", "img");
      const total = buckets.reduce((a, b) => a + b, 0);
      svg.setAttribute("aria-label", `${total} steps finished in the last five minutes`);
      buckets.forEach((n, i) => {
        const r = document.createElementNS(NS, "rect");
        const height = Math.round((n / top) * (hgt - 2));
        r.setAttribute("x", i * bar + 1); r.setAttribute("width", bar - 2); r.setAttribute("y", hgt - height); r.setAttribute("height", height);
        svg.appendChild(r);
      });
      spark.replaceChildren(svg, h("div", { class: "muted", text: `${total} steps finished in the last 5 minutes (since this page opened, per 10 s)` }));
    }
    const table = h("div", {});
    async function drawQueues() {
      const list = await Api.get("queues");
      const queues = list.queues || [];
      table.replaceChildren(queues.length ? h("div", { class: "scroll" }, h("table", { id: "queues" }, h("thead", {}, h("tr", {},
        ["Handler", "Ready", "Running", "Waiting for retry", "Workers", "Free slots"].map((x) => h("th", { text: x })))),
        h("tbody", {}, queues.map((q) => h("tr", { "data-handler": q.handler }, h("td", { class: "mono", text: q.handler }), h("td", { text: String(q.ready || 0) }),
          h("td", { text: String(q.in_progress || 0) }), h("td", { text: String(q.waiting_for_retry || 0) }), h("td", { text: String(q.workers || 0) }),
          h("td", { text: String(q.free_slots || 0) }))))))
        : h("p", { class: "muted", text: "No handler has steps or workers." }));
    }
    await drawQueues();
    drawSpark();
    main.replaceChildren(h("h1", { text: "Queues" }), table, h("h2", { text: "Throughput" }), spark);
    const stream = Api.follow("updates", { resume: false, onUpdate: (u) => { if (status(u.status) === "COMPLETE") { roll(); buckets[buckets.length - 1]++; } } });
    const timer = setInterval(() => { drawQueues().catch(refused); drawSpark(); }, 2000);
    leaving.push(() => { clearInterval(timer); stream.stop(); });
  }

  // Schedules: each with its cron, zone, next and last firing, and the task that firing made.
  async function schedulesView() {
    async function act(question, ok, request) {
      if (!(await confirmed(question, ok))) return;
      try {
        await request();
        say("Done.", true);
        await draw();
      } catch (error) { refused(error); }
    }
    function actions(s) {
      const name = encodeURIComponent(s.name);
      return h("td", { class: "actions" },
        may("SetSchedulePaused") ? h("button", { type: "button", class: "quiet", "data-action": s.paused ? "resume" : "pause", text: s.paused ? "Resume" : "Pause",
          onclick: () => act(s.paused ? `Resume schedule ${s.name} from its next firing?` : `Pause schedule ${s.name}? It fires no task until resumed.`,
            s.paused ? "Resume" : "Pause", () => Api.post(`schedules/${name}:${s.paused ? "resume" : "pause"}`)) }) : "",
        may("DeleteSchedule") ? h("button", { type: "button", class: "danger", "data-action": "delete", text: "Delete",
          onclick: () => act(`Delete schedule ${s.name}? The tasks it made stay.`, "Delete", () => Api.delete(`schedules/${name}`)) }) : "");
    }
    async function draw() {
      const list = await Api.get("schedules");
      const schedules = list.schedules || [];
      const body = schedules.length ? h("div", { class: "scroll" }, h("table", { id: "schedules" }, h("thead", {}, h("tr", {},
        ["Schedule", "Template", "Cron", "Zone", "Overlap", "Next", "Last firing", ""].map((x) => h("th", { text: x })))),
        h("tbody", {}, schedules.map((s) => h("tr", { "data-schedule": s.name },
          h("td", {}, h("strong", { text: s.name }), s.paused ? h("span", { class: "badge s-PENDING", text: "PAUSED" }) : ""),
          h("td", { text: s.template + (s.version ? " " + s.version : "") }), h("td", { class: "mono", text: s.cron }),
          h("td", { text: s.timezone || "UTC" }), h("td", { text: s.overlap === "SCHEDULE_OVERLAP_SKIP" ? "skip" : "allow" }),
          h("td", { class: "next", text: s.paused ? "—" : when(s.next_run_at) }),
          h("td", { class: "last" }, s.last_task_id ? h("a", { href: `#/task/${s.last_task_id}`, text: when(s.last_run_at) }) : "—",
            s.last_error ? h("div", { class: "error", text: s.last_error }) : ""),
          actions(s))))))
        : h("p", { class: "muted", text: "No schedules. Create one with tasker schedules create, POST /api/v1/schedules or the CreateSchedule RPC." });
      main.replaceChildren(h("h1", { text: "Schedules" }), body);
    }
    await draw();
    const timer = setInterval(() => draw().catch(refused), 5000);
    leaving.push(() => clearInterval(timer));
  }

  async function start() {
    window.addEventListener("hashchange", show);
    try {
      await loadSession();
    } catch (error) {
      if (error instanceof Api.Refusal && error.status === 401) { askForToken(Api.token() ? error.message : ""); return; }
      refused(error);
      return;
    }
    show();
  }
  start();
  return { show };
})();
