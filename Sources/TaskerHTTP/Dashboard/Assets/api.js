"use strict";
// The JSON API as the dashboard uses it: a bearer token kept for this tab only, refusals as
// errors carrying the server's code and message, and update streams that resume after a lost
// connection from the last sequence they saw.

const Api = (() => {
  const tokenKey = "tasker.token";

  function token() { return sessionStorage.getItem(tokenKey); }
  function setToken(value) { value ? sessionStorage.setItem(tokenKey, value) : sessionStorage.removeItem(tokenKey); }

  class Refusal extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function headers(extra) {
    const all = Object.assign({ Accept: "application/json" }, extra || {});
    const bearer = token();
    if (bearer) all.Authorization = "Bearer " + bearer;
    return all;
  }

  async function refusalOf(response) {
    let code = "HTTP_" + response.status, message = response.statusText || "the server refused";
    try {
      const body = await response.json();
      if (body && body.code) { code = body.code; message = body.message || message; }
    } catch (_) { /* not JSON: the status says it */ }
    return new Refusal(response.status, code, message);
  }

  async function call(method, path, body) {
    const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    let response;
    try {
      response = await fetch("/api/v1/" + path, init);
    } catch (error) {
      throw new Refusal(0, "UNAVAILABLE", "the server cannot be reached: " + error.message);
    }
    if (!response.ok) throw await refusalOf(response);
    return response.json();
  }

  function query(params) {
    const parts = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v));
    return parts.length ? "?" + parts.join("&") : "";
  }

  // Follows an event stream until it ends (its `status` event) or `stop()`. `onUpdate(update)`
  // gets each StepUpdate; `onState(state)` hears "live", "reconnecting" and "ended" (with the
  // last status). After a lost connection it reconnects with Last-Event-ID, so nothing is
  // missed and nothing is repeated.
  function follow(path, { after = 0, onUpdate, onState, resume = true }) {
    let last = after, stopped = false, controller = null, delay = 500;
    async function run() {
      while (!stopped) {
        controller = new AbortController();
        const extra = { Accept: "text/event-stream" };
        if (resume && last > 0) extra["Last-Event-ID"] = String(last);
        let ended = null;
        try {
          const response = await fetch("/api/v1/" + path, { headers: headers(extra), signal: controller.signal, cache: "no-store" });
          if (!response.ok) {
            const refusal = await refusalOf(response);
            // A refusal is final; an unavailable server is tried again.
            if (response.status !== 503) { onState && onState("ended", { code: refusal.code, message: refusal.message }); return; }
            throw refusal;
          }
          onState && onState("live");
          delay = 500;
          ended = await read(response.body, (update) => {
            const sequence = Number(update.sequence || 0);
            if (sequence > last) last = sequence;
            onUpdate(update);
          });
        } catch (error) {
          if (stopped || (error && error.name === "AbortError")) return;
        }
        // UNAVAILABLE: this node is going away; another (or this one, back) takes the stream on.
        if (ended && ended.code !== "UNAVAILABLE") { onState && onState("ended", ended); return; }
        if (stopped) return;
        onState && onState("reconnecting");
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 8000);
      }
    }
    run();
    return { stop() { stopped = true; if (controller) controller.abort(); }, get last() { return last; } };
  }

  // Reads Server-Sent Events; returns the `status` event's body, or null when the connection
  // ended without one.
  async function read(body, onUpdate) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return null;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (!data) continue;
        const parsed = JSON.parse(data);
        if (name === "status") return parsed;
        onUpdate(parsed);
      }
    }
  }

  return {
    token, setToken, Refusal, query, follow,
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body === undefined ? {} : body),
    delete: (path) => call("DELETE", path),
  };
})();
