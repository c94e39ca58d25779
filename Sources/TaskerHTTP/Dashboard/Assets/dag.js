"use strict";
// A task's steps drawn as a graph: columns by dependency depth (a step sits one column right
// of its deepest dependency), each column ordered by where its dependencies sit so that edges
// cross little, nodes coloured by status. The geometry depends only on the steps and their
// edges, so a status change recolours a node and never moves anything.

const Dag = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 168, H = 36, GAP_X = 54, GAP_Y = 14, PAD = 8;
  const STATUSES = ["PENDING", "ENQUEUED", "IN_PROGRESS", "WAITING_FOR_RETRY", "COMPLETE", "ERROR", "RESOLVED_MANUALLY", "SKIPPED", "CANCELLED"];

  function layout(steps) {
    const byName = new Map(steps.map((s, i) => [s.name, { step: s, index: i }]));
    const depth = new Map();
    function depthOf(name, seen) {
      if (depth.has(name)) return depth.get(name);
      if (seen.has(name)) return 0; // a cycle cannot be registered; drawn flat if met anyway
      seen.add(name);
      const entry = byName.get(name);
      const parents = (entry ? entry.step.depends_on || [] : []).filter((p) => byName.has(p));
      const d = parents.length ? 1 + Math.max(...parents.map((p) => depthOf(p, seen))) : 0;
      depth.set(name, d);
      return d;
    }
    steps.forEach((s) => depthOf(s.name, new Set()));
    const columns = [];
    steps.forEach((s) => { const d = depth.get(s.name); (columns[d] = columns[d] || []).push(s); });
    const row = new Map();
    columns.forEach((column, c) => {
      if (c > 0) {
        const weight = (s) => {
          const parents = (s.depends_on || []).filter((p) => row.has(p));
          return parents.length ? parents.reduce((sum, p) => sum + row.get(p), 0) / parents.length : 0;
        };
        column.sort((a, b) => weight(a) - weight(b) || byName.get(a.name).index - byName.get(b.name).index);
      }
      column.forEach((s, r) => row.set(s.name, r));
    });
    const tallest = Math.max(1, ...columns.map((c) => c.length));
    const positions = new Map();
    columns.forEach((column, c) => {
      // Short columns are centred against the tallest.
      const offset = ((tallest - column.length) * (H + GAP_Y)) / 2;
      column.forEach((s, r) => positions.set(s.name, { x: PAD + c * (W + GAP_X), y: PAD + offset + r * (H + GAP_Y) }));
    });
    return {
      positions,
      width: PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * GAP_X,
      height: PAD * 2 + tallest * H + (tallest - 1) * GAP_Y,
    };
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function shortened(text, room) { return text.length <= room ? text : text.slice(0, room - 1) + "…"; }

  // Draws `steps` ({name, status, depends_on}) into a new <svg>; `onSelect(name)` on a click or
  // Enter. The returned object recolours a node: `setStatus(name, status)`.
  function draw(steps, onSelect, label) {
    const { positions, width, height } = layout(steps);
    const svg = el("svg", { class: "dag", id: "dag", width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": label || "Step graph" });
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8a9099" }, marker);
    const edges = el("g", { class: "edges" }, svg);
    for (const step of steps) {
      const to = positions.get(step.name);
      for (const parent of step.depends_on || []) {
        const from = positions.get(parent);
        if (!from) continue;
        const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x - 2, y2 = to.y + H / 2, mid = (x1 + x2) / 2;
        el("path", { class: "edge", "data-from": parent, "data-to": step.name, d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)" }, edges);
      }
    }
    const nodes = new Map();
    const group = el("g", { class: "nodes" }, svg);
    for (const step of steps) {
      const p = positions.get(step.name);
      const g = el("g", { class: "node", "data-step": step.name, "data-status": step.status, transform: `translate(${p.x} ${p.y})`, tabindex: "0", role: "button" }, group);
      const title = el("title", {}, g);
      const rect = el("rect", { width: W, height: H, rx: "6", class: "fill-" + step.status }, g);
      const name = el("text", { x: "9", y: "15" }, g);
      name.textContent = shortened(step.name, 22);
      const state = el("text", { x: "9", y: "29", "font-size": "10.5", opacity: ".9" }, g);
      const node = { g, rect, state, title, name: step.name };
      nodes.set(step.name, node);
      paint(node, step.status);
      g.addEventListener("click", () => onSelect && onSelect(step.name));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onSelect && onSelect(step.name); } });
    }
    function paint(node, status) {
      node.g.setAttribute("data-status", status);
      node.g.setAttribute("aria-label", `${node.name}: ${status}`);
      node.rect.setAttribute("class", "fill-" + status);
      node.state.textContent = status;
      node.title.textContent = `${node.name} — ${status}`;
    }
    return {
      svg,
      setStatus(name, status) { const node = nodes.get(name); if (node && node.g.getAttribute("data-status") !== status) paint(node, status); },
    };
  }

  function legend() {
    const box = document.createElement("div");
    box.className = "legend";
    box.setAttribute("aria-label", "Status colours");
    for (const status of STATUSES) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.className = "s-" + status;
      item.append(swatch, status);
      box.appendChild(item);
    }
    return box;
  }

  return { draw, legend, layout, STATUSES };
})();
