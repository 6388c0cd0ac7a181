// Jobs page: every job with its progress, live from the event stream; a form to submit a spec.
"use strict";

const filter = document.getElementById("status-filter");
const tbody = document.querySelector("#jobs tbody");

function row(job) {
  const p = job.progress;
  const done = p.completed + p.failed;
  const pct = Math.min(100, (100 * done) / Math.max(1, p.trials_budget));
  const best = p.best_trial === null || p.best_trial === undefined
    ? "–"
    : `<a href="/jobs/${hw.esc(job.id)}/trials/${p.best_trial}">${hw.num(p.best_f1)} (trial ${p.best_trial})</a>`;
  return `<tr data-job="${hw.esc(job.id)}">
    <td><a href="/jobs/${hw.esc(job.id)}">${hw.esc(job.name || "(unnamed)")}</a><br><code class="id">${hw.esc(job.id.slice(0, 12))}</code>
      ${job.synthetic_data ? '<span class="badge synthetic" title="evaluated on synthetic data">synthetic</span>' : ""}</td>
    <td>${hw.badge(job.status)}${job.error ? `<div class="why">${hw.esc(job.error.slice(0, 200))}</div>` : ""}</td>
    <td>${hw.esc(job.stage)}</td>
    <td>${job.spec.targets.map(hw.esc).join(", ")}</td>
    <td><div class="bar" title="${done} of ${p.trials_budget} trials"><div style="width:${pct}%"></div></div>
      ${p.completed} done, ${p.failed} failed, ${p.running} running / ${p.trials_budget}${p.skipped ? ` (${p.skipped} skipped)` : ""}
      ${p.elapsed_s !== null ? `<br><small>${hw.duration(p.elapsed_s)}</small>` : ""}</td>
    <td>${best}</td>
    <td>${hw.when(job.created_at)}</td><td>${hw.when(job.started_at)}</td><td>${hw.when(job.finished_at)}</td>
  </tr>`;
}

async function refresh() {
  const q = new URLSearchParams({ limit: "200" });
  if (filter.value) q.set("status", filter.value);
  try {
    const jobs = await hw.api("/api/v1/jobs?" + q);
    tbody.innerHTML = jobs.map(row).join("");
    document.getElementById("no-jobs").hidden = jobs.length > 0;
    document.body.dataset.loaded = "1";
  } catch (e) { hw.fail(e); }
}

async function submit(ev) {
  ev.preventDefault();
  const msg = document.getElementById("submit-msg");
  msg.className = "";
  msg.textContent = "submitting…";
  try {
    const spec = await hw.api("/ui/spec", { method: "POST", body: document.getElementById("spec").value, headers: { "Content-Type": "text/plain" } });
    const created = await hw.api("/api/v1/jobs", { method: "POST", body: JSON.stringify(spec), headers: { "Content-Type": "application/json" } });
    msg.innerHTML = `submitted: <a href="/jobs/${hw.esc(created.id)}">job ${hw.esc(created.id.slice(0, 12))}</a>`;
    location.href = `/jobs/${created.id}`;
  } catch (e) {
    msg.className = "error-text";
    msg.textContent = e instanceof hw.ApiError ? `refused (${e.status}): ${hw.detailText(e.detail)}` : String(e);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const schedule = hw.coalesce(refresh);
  filter.addEventListener("change", schedule);
  document.getElementById("submit").addEventListener("submit", submit);
  refresh();
  const live = document.getElementById("live");
  hw.events({}, () => schedule(), (state) => { live.textContent = state; live.className = "live state-" + state.replace(/ /g, "-"); });
});
