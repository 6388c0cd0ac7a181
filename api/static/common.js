// Shared by the three pages: the API token, fetch with it, the event stream, formatting.
"use strict";

const hw = (() => {
  const TOKEN_KEY = "hwnas-token";
  const token = () => localStorage.getItem(TOKEN_KEY) || "";

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    const t = token();
    if (t) h.Authorization = "Bearer " + t;
    return h;
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(`${status}: ${detailText(detail)}`);
      this.status = status;
      this.detail = detail;
    }
  }

  function detailText(detail) {
    if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }

  // fetch with the bearer token; JSON back unless opts.raw (then the Response)
  async function api(path, opts = {}) {
    const r = await fetch(path, Object.assign({}, opts, { headers: headers(opts.headers) }));
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).detail; } catch (e) { /* not JSON */ }
      if (r.status === 401 || r.status === 403) authNeeded(r.status, detail);
      throw new ApiError(r.status, detail);
    }
    return opts.raw ? r : r.json();
  }

  // Server-sent events over fetch (EventSource cannot send an Authorization header).
  // Reconnects after the server's retry delay, resuming with Last-Event-ID.
  function events(query, onEvent, onState = () => {}) {
    let lastId = null, retry = 2000, stopped = false, ctrl = null;
    const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
    (async () => {
      while (!stopped) {
        ctrl = new AbortController();
        try {
          const h = headers({ Accept: "text/event-stream" });
          if (lastId !== null) h["Last-Event-ID"] = lastId;
          // the page has just read the current state: the first connection wants only what changes next
          const q = lastId === null ? { ...query, since: "now" } : query;
          const r = await fetch("/api/v1/events?" + new URLSearchParams(q), { headers: h, signal: ctrl.signal, cache: "no-store" });
          if (r.status === 401 || r.status === 403) { authNeeded(r.status, "the event stream needs a token"); onState("no token"); return; }
          if (!r.ok) throw new ApiError(r.status, r.statusText);
          onState("live");
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += value.replace(/\r\n?/g, "\n");
            let end;
            while ((end = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, end);
              buf = buf.slice(end + 2);
              const ev = { event: "message", data: [], id: null };
              for (const line of block.split("\n")) {
                if (!line || line.startsWith(":")) continue;
                const colon = line.indexOf(":");
                const field = colon < 0 ? line : line.slice(0, colon);
                let val = colon < 0 ? "" : line.slice(colon + 1);
                if (val.startsWith(" ")) val = val.slice(1);
                if (field === "data") ev.data.push(val);
                else if (field === "event") ev.event = val;
                else if (field === "id") ev.id = val;
                else if (field === "retry" && /^\d+$/.test(val)) retry = Number(val);
              }
              if (ev.id !== null) lastId = ev.id;
              if (ev.data.length) {
                let data = ev.data.join("\n");
                try { data = JSON.parse(data); } catch (e) { /* plain text */ }
                onEvent(ev.event, data);
              }
            }
          }
        } catch (e) {
          if (stopped) return;
        }
        onState("reconnecting");
        await sleep(retry);
      }
    })();
    return { close() { stopped = true; if (ctrl) ctrl.abort(); } };
  }

  // Run fn at most once at a time, again after events that arrived while it ran; never a timer loop.
  function coalesce(fn, delay = 200) {
    let timer = null, running = false, again = false;
    const run = async () => {
      timer = null;
      if (running) { again = true; return; }
      running = true;
      try { await fn(); } finally {
        running = false;
        if (again) { again = false; schedule(); }
      }
    };
    const schedule = () => { if (timer === null) timer = setTimeout(run, delay); };
    return schedule;
  }

  function authNeeded(status, detail) {
    const box = document.getElementById("auth-msg");
    if (!box) return;
    box.hidden = false;
    box.textContent = status === 403
      ? `This token may not do that (${detailText(detail)}): a write token is needed.`
      : `This hwnas server needs an API token (${detailText(detail)}). Paste one made with \`hwnas token create --scope read\` above.`;
    document.getElementById("token").focus();
  }

  function setupHeader() {
    const form = document.getElementById("auth");
    const input = document.getElementById("token");
    input.value = token();
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
      location.reload();
    });
    document.getElementById("token-clear").addEventListener("click", () => {
      localStorage.removeItem(TOKEN_KEY);
      location.reload();
    });
  }

  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const num = (x, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(digits));
  const int = (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en"));
  const when = (iso) => (iso ? new Date(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z").toLocaleString() : "–");
  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return `${s.toFixed(1)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }
  function bytes(n) {
    if (n === null || n === undefined) return "–";
    const u = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
  }
  const badge = (status) => `<span class="badge ${esc(status)}">${esc(status)}</span>`;
  const TERMINAL = ["completed", "failed", "cancelled"];

  // a trial's measurement on one target (in its job's precision), or a baseline's in the given precision
  const measurementOn = (t, target, precision = null) =>
    (t.measurements || []).find((m) => m.target === target && (precision === null || m.precision === precision)) || null;

  // "native on <cpu>" or "EMULATED <target> on <cpu>", said plainly
  function whereMeasured(m) {
    const fp = m.fingerprint || {};
    const cpu = `${fp.cpu_model_name || "unknown CPU"} (${fp.microarchitecture || "?"})`;
    if (fp.emulated) return `emulated: ${m.target} imitated on ${cpu}, ISA capped at ${fp.isa_cap || "none"}${fp.threads_cap ? `, ${fp.threads_cap} threads` : ""}. Not a real ${m.target}`;
    return `native: measured on this target's own CPU, ${cpu}`;
  }

  function fail(err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return; // the token notice says it
    const box = document.getElementById("error");
    if (box) { box.hidden = false; box.textContent = String(err.message || err); }
    console.error(err);
  }

  document.addEventListener("DOMContentLoaded", setupHeader);
  return { api, events, coalesce, esc, num, int, when, duration, bytes, badge, TERMINAL, measurementOn, whereMeasured, fail, detailText, token, ApiError };
})();
