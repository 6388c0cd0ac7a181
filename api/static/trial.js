// Trial page: the subnet drawn layer by layer, F1/EM, measurements with their fingerprints, stage times,
// the model card and the download (checked against the server's SHA-256).
"use strict";

const [, , jobId, , numberText] = location.pathname.split("/").map(decodeURIComponent);
const number = Number(numberText);
const base = `/api/v1/jobs/${encodeURIComponent(jobId)}`;
let stream = null;

function renderSummary(job, t) {
  document.title = `hwnas · trial ${t.number}`;
  document.getElementById("job-link").href = `/jobs/${encodeURIComponent(jobId)}`;
  document.getElementById("job-link").textContent = job.name || job.id.slice(0, 12);
  document.getElementById("crumb").textContent = `trial ${t.number}`;
  document.getElementById("number").textContent = t.number;
  document.getElementById("state").innerHTML = hw.badge(t.state);
  const err = document.getElementById("trial-error");
  err.hidden = !t.error;
  err.textContent = t.error ? `${t.state === "skipped" ? "skipped by the latency predictor (no budget spent)" : "failed"}: ${t.error}` : "";
  const items = [
    ["F1 (INT8 model)", hw.num(t.f1)],
    ["exact match", hw.num(t.exact_match)],
    ...(t.f1_before_refine !== null && t.f1_before_refine !== undefined
      ? [["before refinement", `F1 ${hw.num(t.f1_before_refine)} · EM ${hw.num(t.exact_match_before_refine)}`]] : []),
    ...(t.metrics && t.metrics.compression ? [["compression", compressionText(t.metrics.compression)]] : []),
    ["constraints", t.feasible === true ? "all met" : t.feasible === false ? '<span class="why">not all met (infeasible)</span>' : "–"],
    ["evaluated on", t.eval_questions ? `${hw.int(t.eval_questions)} questions${job.synthetic_data ? " (synthetic data)" : ""}` : "–"],
    ["parameters", hw.int(t.parameters)],
    ["IR size", hw.bytes(t.ir_size_bytes)],
    ["built on", hw.esc(t.host || "–")],
    ["started", hw.when(t.started_at)],
    ["finished", hw.when(t.finished_at)],
  ];
  document.getElementById("metrics").innerHTML = items.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
  document.getElementById("download").disabled = t.state !== "completed";
}

// "QAT (100 steps) · sparsity 0.8 (IR weights 79.8% zeros, 200 pruning steps)"
function compressionText(c) {
  const parts = [c.quantization ? `${hw.esc(c.quantization)}${c.qat_steps ? ` (${hw.int(c.qat_steps)} steps)` : ""}` : "FP32"];
  if (c.sparsity) parts.push(`sparsity ${hw.num(c.sparsity)} (IR weights ${hw.num(100 * c.weight_sparsity)}% zeros, ${hw.int(c.prune_steps)} pruning steps, ${hw.esc(c.prune_mode)})`);
  return parts.join(" · ");
}

// Each encoder layer of the base model as a column: heads and FFN width kept, or dropped.
function renderArchitecture(job, t, card) {
  const { layers, heads, ffn } = t.config;
  const baseLayers = Math.max(layers[layers.length - 1] + 1, ...(job.spec.search_space.layers || [1]));
  const all = Array.from({ length: baseLayers }, (_, i) => i);
  const kept = new Map(layers.map((l, i) => [l, i]));
  const x = all.map((i) => `layer ${i}`);
  const val = (arr, i) => (kept.has(i) ? arr[kept.get(i)] : 0);
  const label = (arr, i) => (kept.has(i) ? String(arr[kept.get(i)]) : "dropped");
  Plotly.react("arch", [
    { type: "bar", name: "attention heads", x, y: all.map((i) => val(heads, i)), text: all.map((i) => label(heads, i)), textposition: "outside", marker: { color: "#1f6fd1" }, xaxis: "x", yaxis: "y", hovertemplate: "%{x}: %{text} heads<extra></extra>" },
    { type: "bar", name: "FFN width", x, y: all.map((i) => val(ffn, i)), text: all.map((i) => label(ffn, i)), textposition: "outside", marker: { color: "#e67e22" }, xaxis: "x2", yaxis: "y2", hovertemplate: "%{x}: FFN %{text}<extra></extra>" },
  ], {
    grid: { rows: 1, columns: 2, pattern: "independent" }, height: 320, margin: { t: 30, r: 20, b: 50, l: 50 }, showlegend: false,
    yaxis: { title: { text: "attention heads" }, rangemode: "tozero" }, yaxis2: { title: { text: "FFN width (neurons)" }, rangemode: "tozero" },
    annotations: [
      { text: "heads per layer", showarrow: false, xref: "x domain", yref: "paper", x: 0.5, y: 1.08 },
      { text: "FFN width per layer", showarrow: false, xref: "x2 domain", yref: "paper", x: 0.5, y: 1.08 },
    ],
  }, { displaylogo: false, responsive: true });
  const arch = card && card.architecture;
  document.getElementById("arch-text").innerHTML =
    `${layers.length} of ${baseLayers} encoder layers kept (${layers.join(", ")}); ` +
    `${heads.reduce((a, b) => a + b, 0)} attention heads and ${hw.int(ffn.reduce((a, b) => a + b, 0))} FFN neurons in all` +
    (arch ? `; hidden size ${arch.hidden_size}, head size ${arch.head_size}` : "") + ".";
}

function renderMeasurements(t) {
  const box = document.getElementById("measurements");
  if (!t.measurements.length) { box.textContent = t.state === "running" ? "not measured yet" : "no measurements"; return; }
  box.innerHTML = t.measurements.map((m) => {
    const fp = m.fingerprint || {};
    return `<section class="measurement ${fp.emulated ? "emulated" : "native"}" data-target="${hw.esc(m.target)}">
      <h3><code>${hw.esc(m.target)}</code> <span class="badge ${fp.emulated ? "emulated" : "native"}">${fp.emulated ? "emulated" : "native"}</span> ${hw.esc(m.precision.toUpperCase())}</h3>
      <p class="where">${hw.esc(hw.whereMeasured(m))}.</p>
      ${predicted(t, m.target)}
      <table class="data">
        <tr><th>latency (batch ${m.latency_batch}, seq ${m.seq_len})</th><td>p50 ${hw.num(m.p50_ms, 3)} ms · <b>p90 ${hw.num(m.p90_ms, 3)} ms</b> · p99 ${hw.num(m.p99_ms, 3)} ms · ${hw.int(m.latency_iterations)} iterations</td></tr>
        <tr><th>throughput (batch ${m.throughput_batch})</th><td>${hw.num(m.throughput_sps, 1)} samples/s · ${hw.esc(fp.streams ?? "–")} streams · ${hw.esc(fp.nireq ?? "–")} requests</td></tr>
        ${deploymentRow(m)}
        <tr><th>runs as</th><td>${hw.esc(fp.inference_precision ?? "–")} · ${hw.esc(fp.threads ?? "–")} threads · ISA cap ${hw.esc(fp.isa_cap || "none")} · nice ${hw.esc(fp.nice ?? "–")}</td></tr>
        ${sparseRow(fp.sparse_kernels)}
        <tr><th>stability</th><td>${fp.repeats ? `${fp.repeats} repeats, p50 spread ${hw.num(fp.spread_pct, 1)}%${fp.converged === false ? " (not converged)" : ""}` : "–"}</td></tr>
        <tr><th>software</th><td>OpenVINO ${hw.esc(fp.openvino_version ?? "–")} · NNCF ${hw.esc(fp.nncf_version ?? "–")} · measured ${hw.esc(fp.measured_at ?? "–")}</td></tr>
      </table>
      <details><summary>full fingerprint</summary><pre>${hw.esc(JSON.stringify(fp, null, 2))}</pre></details>
    </section>`;
  }).join("");
}

// a target that asks for sparse-weight decompression: how many FullyConnected layers OpenVINO really ran sparse
function sparseRow(census) {
  if (!census) return "";
  const what = census.sparse ? `${hw.int(census.sparse)} of ${hw.int(census.fully_connected)} FullyConnected layers on a sparse kernel`
    : `none of ${hw.int(census.fully_connected)} FullyConnected layers on a sparse kernel: the zeros ran densely`;
  return `<tr><th>sparse weights</th><td>${what} · ${census.kernels.map((k) => `<code>${hw.esc(k)}</code>`).join(" ")}</td></tr>`;
}

// the deployment the sweep chose on this target (length policy, Offline batch) and why, with the fixed-length figures
function policyName(p) {
  if (!p) return "–";
  if (p.name === "buckets") return `buckets ${p.buckets.join("/")}`;
  return p.name === "fixed" ? `fixed ${p.max_length}` : "dynamic shapes";
}
function deploymentRow(m) {
  const d = m.deployment;
  if (!d) return `<tr class="deployment"><th>deployment</th><td>fixed length ${m.seq_len} only (no deployment sweep)</td></tr>`;
  const f = d.fixed_length || {};
  return `<tr class="deployment"><th>deployment</th><td>Offline: <b>${hw.esc(policyName(d.offline.length_policy))}</b>, batch ${hw.esc(d.offline.batch ?? "–")},
    ${hw.esc(d.offline.streams ?? "–")} streams · SingleStream: ${hw.esc(policyName(d.single_stream.length_policy))} · figures by ${hw.esc(d.figures_by ?? "–")}
    <br><span class="precision">inference precision (what is not INT8): ${hw.esc((d.inference_precision || "f32").toUpperCase())}${d.f1_as_deployed ? ` · F1 as deployed ${hw.num(d.f1_as_deployed.f1, 2)}` : ""}</span>
    <br><span class="reason">${hw.esc(d.reason ?? "")}</span>
    <br>at fixed length ${hw.esc(f.seq_len ?? "–")}: p90 ${hw.num(f.p90_ms, 3)} ms · ${hw.num(f.throughput_sps, 1)} samples/s (batch ${hw.esc(f.throughput_batch ?? "–")})</td></tr>`;
}

function predicted(t, target) {
  const p = t.predicted && t.predicted[target];
  if (!p) return "";
  const parts = [p.p90_ms != null ? `p90 ${hw.num(p.p90_ms, 3)} ms` : null, p.throughput_sps != null ? `${hw.num(p.throughput_sps, 1)} samples/s` : null].filter(Boolean);
  return `<p class="predicted">The speed predictor expected ${parts.join(", ") || "–"}${p.points ? ` (fitted on ${p.points} measurements)` : ""} before this was measured.</p>`;
}

function renderStages(t) {
  const s = t.stage_seconds || {};
  const entries = Object.entries(s).filter(([k, v]) => typeof v === "number" && !k.endsWith("_at"));
  if (!entries.length) { document.getElementById("stages").textContent = s.reused_from_trial !== undefined ? `reused from trial ${s.reused_from_trial}` : "–"; return; }
  Plotly.react("stages", [{
    type: "bar", orientation: "h", y: entries.map(([k]) => k), x: entries.map(([, v]) => v),
    text: entries.map(([, v]) => `${v.toFixed(2)} s`), textposition: "auto", marker: { color: "#5d6d7e" }, hovertemplate: "%{y}: %{x:.2f} s<extra></extra>",
  }], { height: 60 + 30 * entries.length, margin: { t: 10, r: 20, b: 40, l: 90 }, xaxis: { title: { text: "seconds" } }, yaxis: { autorange: "reversed" } },
  { displaylogo: false, responsive: true });
}

async function download() {
  const msg = document.getElementById("download-msg");
  msg.className = "";
  msg.textContent = "preparing the zip…";
  try {
    const r = await hw.api(`${base}/trials/${number}/model`, { raw: true });
    const blob = await r.blob();
    const expected = r.headers.get("X-Checksum-SHA256");
    let check = "no checksum sent";
    if (expected && crypto.subtle) {
      const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
      const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
      if (hex !== expected) throw new Error(`the zip's SHA-256 ${hex} is not the server's ${expected}: not saved`);
      check = `SHA-256 verified (${hex.slice(0, 16)}…)`;
    }
    const name = (/filename="?([^";]+)"?/.exec(r.headers.get("Content-Disposition") || "") || [])[1] || `trial${number}-int8.zip`;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 10000);
    msg.textContent = `${name}, ${hw.bytes(blob.size)}, ${check}`;
  } catch (e) {
    msg.className = "error-text";
    msg.textContent = e instanceof hw.ApiError ? `refused (${e.status}): ${hw.detailText(e.detail)}` : String(e.message || e);
  }
}

async function refresh() {
  try {
    const [job, t] = await Promise.all([hw.api(base), hw.api(`${base}/trials/${number}`)]);
    const card = t.state === "completed" ? await hw.api(`${base}/trials/${number}/card`).catch(() => null) : null;
    renderSummary(job, t);
    renderArchitecture(job, t, card);
    renderMeasurements(t);
    renderStages(t);
    document.getElementById("card").textContent = card ? JSON.stringify(card, null, 2) : t.state === "completed" ? "no model card found" : `none yet (trial ${t.state})`;
    if (t.state !== "running" && stream) { stream.close(); stream = null; document.getElementById("live").textContent = ""; }
    document.body.dataset.loaded = "1";
    return t;
  } catch (e) { hw.fail(e); return null; }
}

document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("download").addEventListener("click", download);
  const t = await refresh();
  if (t && t.state === "running") { // live until it finishes
    const schedule = hw.coalesce(refresh);
    stream = hw.events({ job_id: jobId }, (kind, data) => { if (kind === "trial" && data.number === number) schedule(); },
      (s) => { const live = document.getElementById("live"); live.textContent = s; live.className = "live state-" + s.replace(/ /g, "-"); });
  }
});
