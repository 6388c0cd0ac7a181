// Job page: stage, progress, a Pareto scatter per target and the trial table, live from the event stream.
"use strict";

const jobId = decodeURIComponent(location.pathname.split("/")[2]);
const state = { job: null, trials: [], fronts: {}, sort: { key: "number", desc: false }, minF1: null, stream: null, axisSet: false };
const xAxisSel = document.getElementById("xaxis");
const viewSel = document.getElementById("view"); // the front as deployed, or at fixed length (comparable with MLPerf and older jobs)
const minF1Input = document.getElementById("min-f1");
const trialUrl = (n) => `/jobs/${encodeURIComponent(jobId)}/trials/${n}`;

// ---------- header: status, stage, progress ----------
function renderJob(job) {
  document.title = `hwnas · ${job.name || job.id.slice(0, 12)}`;
  document.getElementById("crumb").textContent = job.name || job.id.slice(0, 12);
  document.getElementById("job-name").textContent = job.name || "(unnamed job)";
  document.getElementById("job-status").innerHTML = hw.badge(job.status);
  document.getElementById("job-id").textContent = job.id;
  document.getElementById("synthetic").hidden = !job.synthetic_data;
  const spec = job.spec;
  const stages = ["queued", "teacher", "baseline", ...(spec.supernet && spec.supernet.enabled ? ["supernet"] : []), "search",
    ...(spec.refine && spec.refine.top_k > 0 ? ["refine"] : []), "done"];
  if (!stages.includes(job.stage)) stages.splice(stages.length - 1, 0, job.stage); // e.g. waiting_for_target
  const at = stages.indexOf(job.stage);
  document.getElementById("stages").innerHTML = stages
    .map((s, i) => `<li class="${i === at ? "current" : i < at ? "past" : ""}" ${i === at ? 'aria-current="step"' : ""}>${hw.esc(s)}</li>`)
    .join("");
  document.getElementById("stages").dataset.stage = job.stage;
  const p = job.progress;
  const done = p.completed + p.failed;
  document.getElementById("progress-bar").style.width = `${Math.min(100, (100 * done) / Math.max(1, p.trials_budget))}%`;
  document.getElementById("progress-text").textContent =
    `${p.completed} completed, ${p.failed} failed, ${p.running} running of ${p.trials_budget} trials` +
    (p.skipped ? ` (${p.skipped} more proposals skipped by the latency predictor)` : "") +
    (p.elapsed_s !== null ? ` · ${hw.duration(p.elapsed_s)}` : "") + (p.timeout_s ? ` of ${hw.duration(p.timeout_s)}` : "");
  renderStageProgress(job.stage_progress);
  const teacher = job.teacher_metrics
    ? Object.entries(job.teacher_metrics).filter(([, v]) => typeof v === "number").map(([k, v]) => `${hw.esc(k)} ${hw.num(v)}`).join(", ")
    : "";
  document.getElementById("job-meta").innerHTML = `
    base model <code>${hw.esc(job.spec.base_model)}</code> · sampler ${hw.esc(job.spec.sampler)} · objective: F1 and ${objective() === "throughput" ? "throughput" : "p90 latency"}
    · targets ${job.spec.targets.map(hw.esc).join(", ")}
    · created ${hw.when(job.created_at)}${job.finished_at ? ` · ended ${hw.when(job.finished_at)}` : ""}
    ${teacher ? `<br>teacher: ${teacher}` : ""}
    ${job.deployment && job.deployment.precision ? `<br><span id="deployment">deployment: ${hw.esc(job.deployment.precision.toUpperCase())} · ${hw.esc(job.deployment.reason)}</span>` : ""}
    ${job.deployment && job.deployment.unavailable_targets ? `<br><span id="unavailable" class="why">not measured: ${hw.esc(Object.values(job.deployment.unavailable_targets).join("; "))}</span>` : ""}
    ${job.deployment && job.deployment.sparsity ? `<br><span id="sparsity">sparsity ${hw.esc(job.deployment.sparsity.choices.join(", "))} · ${hw.esc(job.deployment.sparsity.reason)}</span>` : ""}
    <br>Optuna study <code>${hw.esc(job.study_name)}</code> (also in optuna-dashboard)`;
  const err = document.getElementById("job-error");
  err.hidden = !job.error;
  err.textContent = job.error ? `job ${job.status}: ${job.error}` : "";
  document.getElementById("cancel").hidden = hw.TERMINAL.includes(job.status);
}

// ---------- progress inside the current stage and the running trials ----------
function progressText(p) {
  const steps = p.total ? ` ${p.step ?? 0}/${p.total} ${p.unit || "steps"}` : "";
  const loss = p.loss !== null && p.loss !== undefined ? ` · loss ${hw.num(p.loss)}` : "";
  const eta = p.eta_s !== null && p.eta_s !== undefined ? ` · ETA ${hw.duration(p.eta_s)}` : "";
  return `${p.item}: ${p.phase || "starting"}${steps}${loss} · ${hw.duration(p.elapsed_s || 0)} elapsed${eta}`;
}

function renderStageProgress(p) {
  const box = document.getElementById("stage-progress");
  box.hidden = !p;
  if (!p) return;
  const pct = p.total ? Math.min(100, (100 * (p.step || 0)) / p.total) : 0;
  const bar = document.getElementById("stage-progress-bar");
  bar.style.width = `${pct}%`;
  bar.parentElement.setAttribute("aria-valuenow", String(Math.round(pct)));
  box.dataset.stage = p.stage;
  box.dataset.step = String(p.step ?? "");
  document.getElementById("stage-progress-text").textContent = progressText(p);
}

function renderRunning() {
  const running = state.trials.filter((t) => t.state === "running" && t.progress);
  const ul = document.getElementById("running");
  ul.hidden = running.length === 0;
  ul.innerHTML = running.map((t) => {
    const pct = t.progress.total ? Math.min(100, (100 * (t.progress.step || 0)) / t.progress.total) : 0;
    return `<li data-number="${t.number}"><a href="${trialUrl(t.number)}">trial ${t.number}</a>
      <span class="bar"><span style="display:block;height:100%;background:var(--blue);width:${pct}%"></span></span>
      ${hw.esc(progressText(t.progress))}</li>`;
  }).join("");
}

// ---------- one Pareto scatter per target ----------
function targetSection(target) {
  let sec = document.getElementById(`target-${target}`);
  if (!sec) {
    sec = document.createElement("section");
    sec.id = `target-${target}`;
    sec.className = "target";
    sec.innerHTML = `<h3>target <code>${hw.esc(target)}</code> <span class="how"></span></h3>
      <div class="plot" id="plot-${hw.esc(target)}" data-target="${hw.esc(target)}"></div><p class="best"></p>`;
    document.getElementById("targets").appendChild(sec);
    const plot = sec.querySelector(".plot");
    Plotly.newPlot(plot, [], {}, { responsive: true, displaylogo: false });
    plot.on("plotly_click", (ev) => {
      const n = ev.points && ev.points[0] && ev.points[0].customdata;
      if (n !== undefined && n !== null) location.href = trialUrl(n);
    });
  }
  return sec;
}

function renderTarget(target) {
  const sec = targetSection(target);
  const plot = sec.querySelector(".plot");
  const byLatency = xAxisSel.value === "p90";
  const alongObjective = byLatency === (objective() !== "throughput"); // the front line follows the front's own axis
  const fixed = viewSel.value === "fixed";
  const speed = (m) => (fixed && m.deployment && m.deployment.fixed_length) || m; // a measurement without a sweep is fixed-length
  const xOf = (m) => (byLatency ? speed(m).p90_ms : speed(m).throughput_sps);
  const front = state.fronts[target] || { trials: [], best: null };
  const onFront = new Set(front.trials.map((t) => t.number));
  // every completed trial with an F1 and an INT8 measurement on this target: the API's plotted set
  const points = state.trials
    .filter((t) => t.state === "completed" && t.f1 !== null)
    .map((t) => ({ t, m: hw.measurementOn(t, target) }))
    .filter((p) => p.m);
  const hover = ({ t, m }) =>
    `trial ${t.number}<br>F1 ${hw.num(t.f1)} · EM ${hw.num(t.exact_match)}<br>p90 ${hw.num(m.p90_ms, 3)} ms · ${hw.num(m.throughput_sps, 1)} samples/s` +
    `<br>${t.config.layers.length} layers · ${hw.int(t.parameters)} parameters${m.fingerprint.emulated ? "<br>emulated" : ""}` +
    (t.feasible === false ? "<br>infeasible (misses a constraint)" : "");
  const trace = (pts, extra) => Object.assign({
    type: "scatter", mode: "markers", meta: "trials",
    x: pts.map((p) => xOf(p.m)), y: pts.map((p) => p.t.f1),
    customdata: pts.map((p) => p.t.number), text: pts.map(hover), hoverinfo: "text",
  }, extra);
  const dominated = points.filter((p) => !onFront.has(p.t.number));
  const frontPts = points.filter((p) => onFront.has(p.t.number)).sort((a, b) => xOf(a.m) - xOf(b.m));
  const traces = [
    trace(dominated, { name: "dominated trials", marker: { size: 9, color: "#7a8ca3", opacity: 0.3 } }),
    trace(frontPts, { name: "Pareto front", mode: alongObjective ? "lines+markers" : "markers", line: { shape: byLatency ? "hv" : "vh", color: "#1f6fd1", width: 1.5 }, marker: { size: 11, color: "#1f6fd1" } }),
  ];
  for (const [precision, symbol, color] of [["fp32", "star", "#c0392b"], ["int8", "diamond", "#e67e22"]]) {
    const b = (state.job.baselines || []).find((x) => x.precision === precision && x.state === "completed");
    const m = b && hw.measurementOn(b, target, precision);
    if (b && m && b.f1 !== null) {
      traces.push({
        type: "scatter", mode: "markers+text", name: `teacher ${precision.toUpperCase()}`, x: [xOf(m)], y: [b.f1],
        text: [`teacher ${precision.toUpperCase()}`], textposition: "top center", hoverinfo: "x+y+name",
        marker: { symbol, size: 15, color },
      });
    }
  }
  const best = front.best && hw.measurementOn(front.best, target);
  if (best) {
    traces.push({
      type: "scatter", mode: "markers", name: `best under the constraint`, x: [xOf(best)], y: [front.best.f1],
      customdata: [front.best.number], hoverinfo: "name", marker: { size: 22, color: "rgba(0,0,0,0)", line: { color: "#27ae60", width: 3 } },
    });
  }
  const shapes = [], annotations = [];
  const c = front.constraint || {};
  if (c.min_f1 !== null && c.min_f1 !== undefined) {
    shapes.push({ type: "line", name: "min_f1", xref: "paper", x0: 0, x1: 1, y0: c.min_f1, y1: c.min_f1, line: { color: "#c0392b", dash: "dash", width: 1.5 } });
    annotations.push({ xref: "paper", x: 0, y: c.min_f1, xanchor: "left", yanchor: "top", showarrow: false, text: `F1 constraint ≥ ${hw.num(c.min_f1)}`, font: { color: "#c0392b" } });
  }
  if (byLatency && c.max_latency_ms) {
    shapes.push({ type: "line", name: "max_latency_ms", yref: "paper", y0: 0, y1: 1, x0: c.max_latency_ms, x1: c.max_latency_ms, line: { color: "#c0392b", dash: "dot", width: 1.5 } });
    annotations.push({ yref: "paper", y: 1, x: c.max_latency_ms, xanchor: "left", yanchor: "top", showarrow: false, text: ` p90 ≤ ${c.max_latency_ms} ms`, font: { color: "#c0392b" } });
  }
  Plotly.react(plot, traces, {
    margin: { t: 20, r: 20, b: 50, l: 60 }, height: 420, hovermode: "closest", uirevision: target + xAxisSel.value,
    xaxis: { title: { text: (byLatency ? `p90 latency on ${target} (ms), batch 1, ${precisionName()}` : `throughput on ${target} (samples/s), ${precisionName()}`) + (fixed ? ", at fixed length" : ", as deployed") }, zeroline: false },
    yaxis: { title: { text: `F1 of the ${precisionName()} model` }, zeroline: false },
    legend: { orientation: "h", y: -0.2 }, shapes, annotations,
  });
  plot.dataset.points = String(points.length);
  plot.dataset.front = String(frontPts.length);
  const any = points[0] && points[0].m.fingerprint;
  sec.querySelector(".how").textContent = any ? (any.emulated ? `· emulated on ${any.cpu_model_name}` : `· native (${any.cpu_model_name})`) : "";
  const said = [c.min_f1 != null ? `F1 ≥ ${hw.num(c.min_f1)}` : null, c.max_latency_ms ? `p90 ≤ ${c.max_latency_ms} ms` : null].filter(Boolean).join(" and ");
  sec.querySelector(".best").innerHTML = front.best
    ? `Best trial with ${said}: <a href="${trialUrl(front.best.number)}">trial ${front.best.number}</a> — F1 ${hw.num(front.best.f1)}, p90 ${hw.num(best.p90_ms, 3)} ms, ${hw.num(best.throughput_sps, 1)} samples/s`
    : said ? `No trial on the front meets ${said} yet.` : "";
}

// ---------- failed trials and the sortable table ----------
function renderFailed() {
  const failed = state.trials.filter((t) => t.state === "failed");
  document.getElementById("failed").innerHTML = failed.length
    ? failed.map((t) => `<li><a href="${trialUrl(t.number)}">trial ${t.number}</a>: <span class="why">${hw.esc(t.error || "no reason recorded")}</span></li>`).join("")
    : "<li>none</li>";
  const skipped = state.trials.filter((t) => t.state === "skipped");
  document.getElementById("skipped-box").hidden = !skipped.length;
  document.getElementById("skipped").innerHTML = skipped
    .map((t) => `<li><a href="${trialUrl(t.number)}">trial ${t.number}</a>: ${hw.esc(t.error || "")}</li>`).join("");
}

function columns() {
  const cols = [
    { key: "number", label: "#", value: (t) => t.number, html: (t) => `<a href="${trialUrl(t.number)}">${t.number}</a>` },
    { key: "state", label: "state", value: (t) => t.state, html: (t) => hw.badge(t.state) },
    { key: "layers", label: "layers", value: (t) => t.config.layers.length },
    { key: "heads", label: "heads per layer", value: (t) => t.config.heads.reduce((a, b) => a + b, 0), html: (t) => t.config.heads.join(" ") },
    { key: "ffn", label: "FFN per layer", value: (t) => t.config.ffn.reduce((a, b) => a + b, 0), html: (t) => t.config.ffn.join(" ") },
    { key: "parameters", label: "parameters", value: (t) => t.parameters, html: (t) => hw.int(t.parameters) },
    { key: "f1", label: "F1", value: (t) => t.f1, html: (t) => hw.num(t.f1) },
    { key: "exact_match", label: "EM", value: (t) => t.exact_match, html: (t) => hw.num(t.exact_match) },
    { key: "feasible", label: "feasible", value: (t) => (t.feasible === null || t.feasible === undefined ? null : Number(t.feasible)),
      html: (t) => (t.feasible === true ? "✓" : t.feasible === false ? '<span class="why">✗</span>' : "–") },
  ];
  for (const target of state.job.spec.targets) {
    const m = (t) => hw.measurementOn(t, target);
    cols.push({ key: `p90:${target}`, label: `p90 ms ${target}`, value: (t) => m(t) && m(t).p90_ms, html: (t) => (m(t) ? hw.num(m(t).p90_ms, 3) : "–") });
    cols.push({ key: `tput:${target}`, label: `samples/s ${target}`, value: (t) => m(t) && m(t).throughput_sps, html: (t) => (m(t) ? hw.num(m(t).throughput_sps, 1) : "–") });
    cols.push({
      key: `front:${target}`, label: `front ${target}`,
      value: (t) => ((state.fronts[target] || { trials: [] }).trials.some((f) => f.number === t.number) ? 1 : 0),
      html: (t) => ((state.fronts[target] || { trials: [] }).trials.some((f) => f.number === t.number) ? "★" : ""),
    });
  }
  cols.push({ key: "error", label: "failure or skip reason", value: (t) => t.error || "", html: (t) => `<span class="why">${hw.esc((t.error || "").slice(0, 120))}</span>` });
  return cols;
}

function renderTable() {
  const cols = columns();
  const { key, desc } = state.sort;
  const col = cols.find((c) => c.key === key) || cols[0];
  const missing = (v) => v === null || v === undefined || Number.isNaN(v);
  const rows = [...state.trials].sort((a, b) => {
    const va = col.value(a), vb = col.value(b);
    if (missing(va) || missing(vb)) return missing(va) - missing(vb); // unmeasured last either way
    if (va === vb) return a.number - b.number; // ties by number, either way (as the API does)
    return (va < vb ? -1 : 1) * (desc ? -1 : 1);
  });
  const table = document.getElementById("trials");
  table.querySelector("thead").innerHTML = "<tr>" + cols.map((c) =>
    `<th data-key="${hw.esc(c.key)}" class="${c.key === key ? (desc ? "desc" : "asc") : ""}" title="sort">${hw.esc(c.label)}</th>`).join("") + "</tr>";
  table.querySelector("tbody").innerHTML = rows.map((t) =>
    `<tr data-number="${t.number}" class="${t.state}">` + cols.map((c) => `<td>${c.html ? c.html(t) : hw.esc(c.value(t))}</td>`).join("") + "</tr>").join("");
}

document.querySelector("#trials thead").addEventListener("click", (ev) => {
  const th = ev.target.closest("th");
  if (!th) return;
  state.sort = { key: th.dataset.key, desc: state.sort.key === th.dataset.key ? !state.sort.desc : th.dataset.key !== "number" };
  renderTable();
});

// ---------- data ----------
const objective = () => (state.job && state.job.spec.objective) || "latency";
// the precision the job's subnets are built and measured in (its deployment choice; INT8 until it is made)
const precisionName = () => ((state.job && state.job.deployment && state.job.deployment.precision) || "int8").toUpperCase();

async function refresh() {
  try {
    const job = await hw.api(`/api/v1/jobs/${encodeURIComponent(jobId)}`);
    state.job = job;
    if (!state.axisSet) { xAxisSel.value = objective() === "throughput" ? "throughput" : "p90"; state.axisSet = true; }
    const v2 = job.spec.task && job.spec.task.version === "squad-v2.0"; // which F1 every figure of the page is
    document.getElementById("front-note").textContent =
      `${v2 ? "F1: SQuAD v2.0 (HasAns + NoAns; null threshold chosen on held-out train questions). " : ""}` +
      `Front and dominance: ${precisionName()} F1 against ${objective() === "throughput" ? "Offline throughput" : "p90 latency"} (the job's objective, as the API computes it). Faded points are dominated trials.`;
    // the user's F1 floor, else the job's own constraint (its F1 floor, or its share of the teacher's F1)
    const cap = job.spec.constraints && job.spec.constraints.max_latency_ms;
    const q = state.minF1 !== null ? `&min_f1=${state.minF1}${cap ? `&max_latency_ms=${cap}` : ""}` : "";
    const [trials, ...fronts] = await Promise.all([
      hw.api(`/api/v1/jobs/${encodeURIComponent(jobId)}/trials?limit=10000`),
      ...job.spec.targets.map((t) => hw.api(`/api/v1/jobs/${encodeURIComponent(jobId)}/pareto?target=${encodeURIComponent(t)}&view=${viewSel.value}${q}`)),
    ]);
    state.trials = trials;
    job.spec.targets.forEach((t, i) => { state.fronts[t] = fronts[i]; });
    const floor = fronts[0] && fronts[0].constraint.min_f1;
    if (state.minF1 === null && document.activeElement !== minF1Input) minF1Input.value = floor != null ? Math.round(floor * 100) / 100 : "";
    renderJob(job);
    job.spec.targets.forEach(renderTarget);
    renderRunning();
    renderFailed();
    renderTable();
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    if (hw.TERMINAL.includes(job.status) && state.stream) { // nothing more will happen: let the stream go
      state.stream.close();
      state.stream = null;
      setLive("finished");
    }
    return job;
  } catch (e) { hw.fail(e); return null; }
}

function setLive(text) {
  const live = document.getElementById("live");
  live.textContent = text;
  live.className = "live state-" + text.replace(/ /g, "-");
}

document.addEventListener("DOMContentLoaded", async () => {
  const schedule = hw.coalesce(refresh);
  xAxisSel.addEventListener("change", () => state.job && state.job.spec.targets.forEach(renderTarget));
  viewSel.addEventListener("change", () => refresh()); // the front itself changes: ask the API again
  minF1Input.addEventListener("change", () => {
    const v = parseFloat(minF1Input.value);
    state.minF1 = Number.isFinite(v) ? v : null;
    schedule();
  });
  document.getElementById("cancel").addEventListener("click", async () => {
    if (!confirm("Cancel this job? Running trials are stopped.")) return;
    try { await hw.api(`/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" }); schedule(); } catch (e) { hw.fail(e); }
  });
  const job = await refresh();
  if (job && !hw.TERMINAL.includes(job.status)) {
    state.stream = hw.events({ job_id: jobId }, () => schedule(), setLive);
  } else if (job) {
    setLive("finished");
  }
});
