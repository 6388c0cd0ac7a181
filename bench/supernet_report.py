"""The BENCHMARKS.md section ``bench.supernet`` writes, from its ``results.json`` (no model is run here)."""

from __future__ import annotations

import json
import os
from typing import Any


def report(results: dict[str, Any], command: str) -> str:
    sn, rank, env = results["supernet"], results["rank"], results["environment"]
    xq = results.get("xquad")
    st = results["settings"]
    lines = [
        "### Supernet: weight-sharing MiniLM supernet on the SQuAD train slice",
        "",
        f"Command: `{command}`",
        "",
    ]
    if results.get("note"):
        lines += [f"**Note:** {results['note']}", ""]
    tm = results.get("teacher", {})
    lines += [
        f"- Machine: {env['cpu']}, {env['threads']} torch threads, bf16 autocast: {sn.get('bf16')}; "
        f"torch {env['torch']}, transformers {env['transformers']}. Load average when the report was written: "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} (1 / 5 / 15 min; 2 is this run's own two threads).",
        f"- Teacher: MiniLM fine-tuned by `workers.teacher` ({tm.get('steps', '?')} steps, "
        f"{st['teacher']['epochs']:g} epoch, lr {st['teacher']['lr']:g}, batch {st['teacher']['batch_size']}, seq "
        f"{st['max_seq_length']}/{st['doc_stride']}) on {tm.get('train_questions', '?')} questions of the train slice; "
        f"{sn.get('heldout_articles')} of its articles ({sn.get('heldout_questions')} questions) held out for every F1 below "
        "except XQuAD. Nothing was tuned on XQuAD.",
        f"- Space: `{json.dumps(st['space'])}` ({results['space_size']:,} subnets).",
        f"- Supernet settings: {st['supernet']['epochs']:g} epoch, {sn['steps']} steps of batch {st['supernet']['batch_size']} "
        f"(sandwich: largest + smallest + {st['supernet']['random_subnets']} random subnets per step), lr "
        f"{st['supernet']['learning_rate']:g}, KD alpha {st['supernet']['distill_alpha']} T {st['supernet']['distill_temperature']}, "
        f"seq {st['max_seq_length']}/{st['doc_stride']}, {sn['train_features']} training windows; importance reordering on "
        f"{st['supernet']['importance_batches']} batches.",
        "",
        "| figure | value | target |",
        "| --- | --- | --- |",
        (f"| supernet training wall time (2 cores) | **unfinished run: {sn['train_seconds'] / 60:.1f} min for "
         f"{sn['steps']} of {sn['total_steps']} steps** ({sn['train_seconds'] / sn['steps']:.0f} s/step on the contended "
         f"machine; figures below are of that step-{sn['steps']} checkpoint) | < 45 min |")
        if sn.get("partial") else
        f"| supernet training wall time (2 cores) | **{sn['train_seconds'] / 60:.1f} min** training + "
        f"{(sn['teacher_logits_seconds'] + sn['importance_seconds']) / 60:.1f} min teacher logits and importance "
        f"(whole call {sn['wall_seconds'] / 60:.1f} min incl. evaluation) | < 45 min |",
        f"| peak RSS of the training process | {sn['peak_rss_mib'] or 0:,.0f} MiB | |",
        f"| held-out F1: teacher | {sn['heldout_f1_teacher']:.2f} (EM {sn['heldout_em_teacher']:.2f}) | |",
        f"| held-out F1: largest subnet | **{sn['heldout_f1_largest']:.2f}** (EM {sn['heldout_em_largest']:.2f}); "
        f"{sn['heldout_f1_largest'] - sn['heldout_f1_teacher']:+.2f} vs teacher | within 1.0 |",
        f"| held-out F1: smallest subnet ({results['smallest']}) | {sn['heldout_f1_smallest']:.2f} (EM {sn['heldout_em_smallest']:.2f}) | |",
        f"| Kendall tau, supernet-sliced vs standalone-distilled F1, 8 subnets | **{rank['kendall_tau']:.3f}** (p {rank['kendall_p']:.3g}) | >= 0.7 |",
    ]
    if xq:
        lines.append(
            f"| XQuAD-en F1 ({xq['questions']} q, {xq['seq']}/{xq['stride']}, PyTorch FP32): teacher / largest / smallest "
            f"| {xq['teacher']['f1']:.2f} / {xq['largest']['f1']:.2f} / {xq['smallest']['f1']:.2f} | reporting only |"
        )
    lines += [
        "",
        f"Ranking subnets (F1 on {rank['rank_questions']} questions of the held-out articles; standalone = sliced from "
        "the importance-reordered teacher, distilled "
        f"{rank['standalone']['steps']} steps of batch {rank['standalone']['batch_size']} at lr {rank['standalone']['lr']:g} "
        "from the teacher's logits, one pass over a fixed random sample of training windows):",
        "",
        "| subnet | params (M) | GMACs @256 | supernet F1 | standalone F1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for enc, r in rank["rows"].items():
        lines.append(
            f"| `{enc}` | {r['parameters'] / 1e6:.1f} | {r['macs_seq256'] / 1e9:.2f} | {r['supernet_f1']:.2f} | {r['standalone_f1']:.2f} |"
        )
    gap = sn["heldout_f1_largest"] - sn["heldout_f1_teacher"]
    lines += [""]
    if gap > 1.0:
        lines.append(
            f"Reading: the largest subnet is {gap:.2f} F1 *above* the teacher, not within 1.0 of it: the teacher is "
            "under-trained (1 epoch) and the supernet's largest subnet, which starts from the teacher's weights, trains "
            "further on the same articles with KD and labels; the target (no loss for the largest subnet) is met in "
            "that direction only."
        )
    lines.append(
        "Kendall tau counts pairs: subnets whose F1s differ by less than about 1 point (e.g. the two 3-layer ones "
        "near F1 11) are within the noise of a 400-question score, so a tau of 1.0 says the ranking is right at this "
        "resolution, not that it would stay perfect for subnets closer together."
        if len(rank["rows"]) > 1 else ""
    )
    if sn.get("partial"):
        lines.append(
            f"The under-45-minute target is not demonstrated by this run: {sn['steps']} steps took "
            f"{sn['train_seconds'] / 60:.1f} min on cores shared with other sessions' test suites; at that rate the 130 "
            "steps of the default settings would take about "
            f"{sn['train_seconds'] / sn['steps'] * (sn['total_steps'] or sn['steps']) / 60:.0f} min. A sandwich step is estimated at "
            "about 2.2 teacher steps of compute (largest + smallest + 2 random subnets), and the 1-epoch teacher took "
            "14.6 min for 130 steps on the same machine, so about 32 min is expected on 2 uncontended cores."
        )
    lines += ["", f"Bench wall time {results['bench_seconds'] / 60:.1f} min (this invocation; earlier stages cached)."]
    return "\n".join(lines)
