"""The BENCHMARKS.md section ``bench.search`` writes from a finished run (plus XQuAD-en, scored here once).

Kept apart from the running of jobs (``bench.search``) so the report can be read, and changed,
without the service code around it.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from bench.search_data import log, xquad_f1
from bench.search_figures import fastest_first, meas, overheads, predictor_error, refined

SECTION = "search"


def report(args: argparse.Namespace, out: dict[str, Any], teacher: Path) -> None:
    from bench.report import invocation, replace_section

    job, trials, front = out["job"], out["trials"], out["front"]
    base = {b["precision"]: b for b in job["baselines"]}
    m32, m8 = meas(base["fp32"]), meas(base["int8"])
    floor = 0.99 * base["fp32"]["f1"]
    objective = job["spec"].get("objective", "latency")
    faster = fastest_first(objective)
    ok = [t for t in front["trials"] if t["f1"] >= floor]
    best = min(ok, key=faster) if ok else None
    over = overheads(trials)
    pe = predictor_error(trials)
    pairs = refined(trials)
    fp = m8["fingerprint"]
    rows = []
    for t in sorted(front["trials"], key=faster):
        m = meas(t)
        rows.append(
            f"| {t['number']}{' (refined)' if t.get('f1_before_refine') is not None else ''} | {len(t['config']['layers'])} | {'/'.join(map(str, t['config']['heads']))} | "
            f"{'/'.join(map(str, t['config']['ffn']))} | {t['f1']:.1f} | {m['p90_ms']:.2f} | {m['throughput_sps']:.1f} | "
            f"{'yes' if t['f1'] >= floor else 'no'} |"
        )
    arts = args.data_dir / "artifacts" / job["id"]
    xq: dict[str, dict[str, float]] = {}
    if best is not None:
        log("XQuAD-en (reporting only): teacher FP32, teacher INT8, best subnet INT8")
        for name, ir, precision in (("teacher FP32", "baseline-fp32", "fp32"), ("teacher INT8", "baseline-int8", "int8"), ("best subnet INT8", f"trial-{best['number']}", "int8")):
            xq[name] = xquad_f1(str(arts / ir), teacher, args.xquad, precision)
    counts = job["progress"]
    lines = [
        "## Search engine: a real search on the MiniLM supernet",
        "",
        f"Command: `{invocation()}` "
        f"(started {out['started']}). {args.note}",
        "",
        f"Machine: {fp.get('cpu_model_name')} [{fp.get('microarchitecture')}], {fp.get('logical_cpus')} logical CPUs, OpenVINO {fp.get('openvino_version')}, "
        f"NNCF {fp.get('nncf_version')}. Target `native`; SingleStream b=1 and Offline b=16 at seq {m8['seq_len']}.",
        "",
        f"Teacher: `{teacher}` (bench.supernet's, trained on the train slice minus {len(out['heldout_titles'])} held-out articles); "
        f"the search's F1 is on the first {args.max_eval_examples} questions of those held-out articles ({out['heldout_questions']} in all), never on XQuAD.",
        "",
        f"Main job: sampler nsga2, objective {objective} (F1 up, {'Offline samples/s up' if objective == 'throughput' else 'SingleStream p90 down'}), {args.trials} trials, {counts['completed']} completed, {counts['failed']} failed, {counts['skipped']} skipped by the predictor"
        f"{f' (the counts include the {len(pairs)} refine-stage trials)' if pairs else ''}; "
        f"wall time {out['main_wall_s'] / 60:.1f} min ({'the supernet reused from bench.supernet: ' + str(out.get('supernet_source')) if out.get('supernet_reused') else 'including training its own supernet'}).",
        "",
        "| | F1 (held-out) | SingleStream p90 | Offline samples/s |",
        "| --- | ---: | ---: | ---: |",
        f"| teacher FP32 | {base['fp32']['f1']:.1f} | {m32['p90_ms']:.2f} ms | {m32['throughput_sps']:.1f} |",
        f"| teacher INT8 | {base['int8']['f1']:.1f} | {m8['p90_ms']:.2f} ms | {m8['throughput_sps']:.1f} |",
    ]
    if best is not None:
        bm = meas(best)
        lines += [
            f"| fastest subnet with F1 >= 99% of the teacher FP32 (trial {best['number']}) | {best['f1']:.1f} | {bm['p90_ms']:.2f} ms | {bm['throughput_sps']:.1f} |",
            "",
            f"Its speed-ups, measured in the same run: Offline throughput **{bm['throughput_sps'] / m32['throughput_sps']:.2f}x** the teacher FP32 "
            f"and {bm['throughput_sps'] / m8['throughput_sps']:.2f}x the teacher INT8; SingleStream p90 {m32['p90_ms'] / bm['p90_ms']:.2f}x and "
            f"{m8['p90_ms'] / bm['p90_ms']:.2f}x lower. Goal: 5x the teacher FP32 throughput at 99% of its F1.",
        ]
    else:
        lines += ["", f"No front member reached 99% of the teacher FP32 F1 ({floor:.1f})."]
    lines += [
        "",
        f"Pareto front ({len(front['trials'])} trials, F1 floor {floor:.1f}):",
        "",
        "| trial | layers | heads per layer | FFN per layer | F1 | p90 ms | samples/s | >= 99% |",
        "| ---: | ---: | --- | --- | ---: | ---: | ---: | --- |",
        *rows,
        "",
        f"Overhead: coordinator and scheduling time per trial, median {over['median_share_pct']:.2f}% (mean {over['mean_share_pct']:.2f}%) of the trial's wall time "
        f"({over['trials']} built trials, median trial {over['median_trial_wall_s']:.1f} s; target under 2%). "
        f"Latency predictor (p90; target under 5% mean absolute percentage error): {pe['enough']:.2f}% on the {pe['enough_n']} predictions the search made "
        f"from at least {pe['min_points']} measurements before measuring ({pe['online']:.2f}% on all {pe['online_n']}, the first ones from the baseline alone); "
        f"leave-one-out over the run's {pe['loo_n']} measured subnets: {pe['loo']:.2f}% (Offline throughput: {pe['enough_tpt']:.2f}% online, {pe['loo_tpt']:.2f}% leave-one-out).",
    ]
    if pairs:
        rs = job["spec"].get("refine", {})
        faster = "front members faster than the fastest one at the floor"
        chosen = {"fastest_reachable": f"{faster}, the fastest within {rs.get('max_gap', 12.0):g} F1 of the floor first",
                  "near_floor": f"{faster}, closest to the floor first", "most_accurate": "most accurate feasible front members"}
        policy = rs.get("policy", "fastest_reachable")
        lines += ["", f"Refine stage ({policy}: the {rs.get('top_k')} {chosen.get(policy, 'front members')}; "
                  f"each distilled standalone from the teacher for {rs.get('steps')} steps of batch 16 at lr {rs.get('learning_rate')}, then INT8, F1 and speed again, as a new trial):", "",
                  "| trial | from trial | layers | F1 before | F1 after | p90 ms | samples/s | >= 99% | refine wall s |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
        for t, src in pairs:
            if t["state"] != "completed":
                lines.append(f"| {t['number']} | {src['number'] if src else '?'} | {len(t['config']['layers'])} | | failed: {t.get('error')} | | | | |")
                continue
            m, st = meas(t), t["stage_seconds"] or {}
            lines.append(f"| {t['number']} | {src['number'] if src else '?'} | {len(t['config']['layers'])} | {t['f1_before_refine']:.1f} | {t['f1']:.1f} | {m['p90_ms']:.2f} | "
                         f"{m['throughput_sps']:.1f} | {'yes' if t['f1'] >= floor else 'no'} | {st.get('build_finished_at', 0) - st.get('build_started_at', 0):.0f} |")
    if xq:
        lines += ["", "XQuAD-en (1,190 questions, seq 384 / stride 128), measured once after the search, for reporting only:", "",
                  "| model | F1 | EM |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {v['f1']:.1f} | {v['exact_match']:.1f} |" for k, v in xq.items()]
    if out["comparison"]:
        lines += ["", f"Sampler comparison at {args.comparison_trials} trials per job, the first {out['job']['spec'].get('anchor_trials', 4)} the anchors every job shares "
                  f"({out.get('comparison_wall_s', float('nan')) / 60:.1f} min; subnets already measured in this store are reused): "
                  "hypervolume of F1 up / p90 down, reference F1 0 and the teacher FP32 p90; higher is better.", "",
                  "| sampler | seeds | hypervolume per seed | median |", "| --- | ---: | --- | ---: |"]
        for sampler, hv in out["comparison"].items():
            lines.append(f"| {sampler} | {len(hv)} | {', '.join(f'{v:.1f}' for v in hv)} | {statistics.median(hv):.1f} |")
    replace_section(args.output, SECTION, "\n".join(lines) + "\n")
    print("\n".join(lines))
