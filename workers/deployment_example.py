"""Run this model as hwnas deployed it: answer a question, or score a SQuAD file and time it.

Shipped in the model zip as ``run_deployment.py`` beside ``deployment.json`` (how to run the IR on each
measured target: precision hints, streams, Offline batch, sequence-length policy) and ``model_card.json``.
It needs only ``openvino``, ``numpy`` and ``transformers`` (for the tokenizer in this directory), none of
hwnas: windows, answer spans and SQuAD F1 are computed here, the way the service scored the model
(question + context windows of ``max_seq_length`` tokens overlapping by ``doc_stride``; the 20 best
start and end tokens of each window, spans of at most 30 context tokens; padding is never a candidate).

    python run_deployment.py --question "Who wrote it?" --context "It was written by Ada."
    python run_deployment.py --eval dev.json --limit 100            # F1/EM and Offline samples/s, as JSON
    python run_deployment.py --eval dev.json --target native --seconds 5
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
N_BEST, MAX_ANSWER_TOKENS = 20, 30
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# ----------------------------------------------------------------------------- deployment


def load_deployment(directory: Path, target: str | None) -> dict[str, Any]:
    """The deployment of ``target`` (default: the first one measured) from ``deployment.json``."""
    doc = json.loads((directory / "deployment.json").read_text())
    targets = [t for t in doc["targets"] if t.get("runtime", "openvino") == "openvino"]  # this example runs OpenVINO
    if target is None:
        return targets[0]
    for entry in targets:
        if entry["target"] == target:
            return entry
    raise SystemExit(f"no deployment for target {target!r} in deployment.json; it has: {', '.join(t['target'] for t in targets)}")


def padded_length(policy: dict[str, Any], real: int) -> int:
    """The length a window of ``real`` tokens runs at under the policy (see hwnas core.qa.length_policy)."""
    if policy["name"] == "fixed":
        return int(policy["max_length"])
    if policy["name"] == "dynamic":
        step = int(policy.get("multiple", 16))
        return min(int(policy["max_length"]), -(-real // step) * step)
    return next(b for b in policy["buckets"] if b >= real)


def plan(lengths: np.ndarray, policy: dict[str, Any], batch: int) -> list[tuple[int, np.ndarray]]:
    """(padded length, rows) batches: sorted by padded length; a static policy never mixes lengths."""
    padded = np.array([padded_length(policy, int(n)) for n in lengths])
    order = np.argsort(padded, kind="stable")
    if policy["name"] == "dynamic":
        return [(int(padded[order[i : i + batch]].max()), order[i : i + batch]) for i in range(0, len(order), batch)]
    out = []
    for length in np.unique(padded):
        rows = order[padded[order] == length]
        out.extend((int(length), rows[i : i + batch]) for i in range(0, len(rows), batch))
    return out


class Deployed:
    """The IR compiled the way ``deployment.json`` says: one model per padded length (static policies)."""

    def __init__(self, directory: Path, deployment: dict[str, Any]):
        import openvino as ov

        self.core, self.xml = ov.Core(), str(directory / "openvino_model.xml")
        self.offline = deployment["offline"]
        self.policy, self.batch = self.offline["length_policy"], int(self.offline["batch"] or 1)
        self.config = deployment["openvino_config"]["offline"]
        self.models: dict[int, Any] = {}

    def key(self, length: int) -> int:
        """The compiled model a padded length runs on: its own (static policies) or the one dynamic model (-1)."""
        return -1 if self.policy["name"] == "dynamic" else length

    def model(self, length: int) -> Any:
        key = self.key(length)
        if key not in self.models:
            model = self.core.read_model(self.xml)
            model.reshape({p.get_any_name(): [self.batch, key] for p in model.inputs})
            self.models[key] = self.core.compile_model(model, "CPU", self.config)
        return self.models[key]

    def run(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
        """Start/end logits ``[N, max_len]`` (padding: -inf) and the seconds inference took (compiles excluded).

        Outputs are read on this thread from the oldest request in flight, not in an OpenVINO callback: a
        Python callback runs on OpenVINO's stream threads and needs the GIL there, and a compiled model
        freed while one of them waits for it hung this process at exit (4 of 40 runs, OpenVINO 2026.4.1)."""
        n, width = arrays["input_ids"].shape
        jobs = self.batches(arrays)
        pools = self.per_model(jobs, lambda compiled, nireq: [compiled.create_infer_request() for _ in range(nireq)])
        starts, ends = np.full((n, width), -np.inf, np.float32), np.full((n, width), -np.inf, np.float32)
        idle = {key: collections.deque(pool) for key, pool in pools.items()}
        busy: collections.deque[tuple[int, Any, tuple[int, np.ndarray]]] = collections.deque()

        def finish() -> None:  # the oldest request in flight: wait, read its logits, hand it back
            key, request, (length, rows) = busy.popleft()
            request.wait()
            s, e = request.get_output_tensor(0).data, request.get_output_tensor(1).data
            starts[rows, :length], ends[rows, :length] = s[: len(rows)], e[: len(rows)]
            idle[key].append(request)

        began = time.perf_counter()
        for key, inputs, job in jobs:
            while not idle[key]:
                finish()
            request = idle[key].popleft()
            request.start_async(inputs)
            busy.append((key, request, job))
        while busy:
            finish()
        return starts, ends, time.perf_counter() - began

    def batches(self, arrays: dict[str, np.ndarray]) -> list[tuple[int, dict[str, Any], tuple[int, np.ndarray]]]:
        """(model key, input tensors, (padded length, rows)) per batch of the policy's plan, every model compiled:
        the samples are in memory before any clock starts (as LoadGen's sample library loads them)."""
        import openvino as ov

        out = []
        for length, rows in plan(arrays["attention_mask"].sum(axis=1), self.policy, self.batch):
            compiled = self.model(length)
            take = np.concatenate([rows, np.repeat(rows[-1:], self.batch - len(rows))])  # a partial batch: copies
            names = {p.get_any_name() for p in compiled.inputs}
            tensors = {k: ov.Tensor(np.ascontiguousarray(arrays[k][take, :length])) for k in INPUTS if k in names}
            out.append((self.key(length), tensors, (length, rows)))
        return out

    def per_model(self, jobs: list[tuple[int, dict[str, Any], tuple[int, np.ndarray]]], make: Any) -> dict[int, Any]:
        """``make(compiled, optimal number of infer requests)`` once per compiled model the batches use."""
        out: dict[int, Any] = {}
        for key, _, (length, _) in jobs:
            if key not in out:
                compiled = self.model(length)
                out[key] = make(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        return out

    def throughput(self, arrays: dict[str, np.ndarray], seconds: float) -> tuple[int, float]:
        """(passes, seconds) of Offline inference over the windows, the way the stored figure was taken: LoadGen's
        Offline query carries as many samples as fit in its duration, and the harness queues pass after pass of
        sorted batches with no wait between them (the requests never drain until the end); outputs are not read.
        No Python callback runs on OpenVINO's threads (``AsyncInferQueue`` without one): see ``run``."""
        import openvino as ov

        jobs = self.batches(arrays)
        queues = self.per_model(jobs, ov.AsyncInferQueue)
        passes, began = 0, time.perf_counter()
        while passes < 1 or time.perf_counter() - began < seconds:
            for key, tensors, _ in jobs:  # a full queue blocks start_async until one of its requests is free
                queues[key].start_async(tensors)
            passes += 1
        for queue in queues.values():
            queue.wait_all()
        return passes, time.perf_counter() - began


# ----------------------------------------------------------------------------- windows and answers


def windows(tokenizer: Any, examples: list[dict[str, Any]], max_len: int, stride: int) -> dict[str, Any]:
    enc = tokenizer(
        [e["question"].lstrip() for e in examples], [e["context"] for e in examples], truncation="only_second",
        max_length=max_len, stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
        padding="max_length", return_tensors="np",
    )  # fmt: skip
    markers = {tokenizer.convert_tokens_to_ids(m) for m in ("\u2581", "\u0120")} - {tokenizer.unk_token_id}
    offsets = []
    for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
        context, row = examples[sample]["context"], []
        for t, (seq, (s, e)) in enumerate(zip(enc.sequence_ids(i), enc["offset_mapping"][i].tolist())):
            if seq != 1:
                row.append(None)
                continue
            if int(enc["input_ids"][i][t]) in markers:  # a lone word-start marker: an empty span at its start
                e = s
            while s < e and context[s].isspace():
                s += 1
            row.append((s, e))
        offsets.append(row)
    token_types = enc.get("token_type_ids")
    arrays = {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)}
    arrays["token_type_ids"] = np.zeros_like(arrays["input_ids"]) if token_types is None else token_types.astype(np.int64)
    return {"arrays": arrays, "example": enc["overflow_to_sample_mapping"], "offsets": offsets}


def answers(examples: list[dict[str, Any]], w: dict[str, Any], starts: np.ndarray, ends: np.ndarray) -> tuple[dict[str, str], dict[str, float]]:
    """Best span per question over its windows, and its null odds (CLS score minus the best span's)."""
    best: dict[int, tuple[float, str]] = {}
    null = collections.defaultdict(lambda: float("inf"))
    padding = w["arrays"]["attention_mask"] == 0  # masked before the n-best cut: padding must not take a candidate's place
    for i, sample in enumerate(w["example"]):
        offsets, context = w["offsets"][i], examples[sample]["context"]
        s_top = np.argsort(-np.where(padding[i], -np.inf, starts[i]), kind="stable")[:N_BEST]
        e_top = np.argsort(-np.where(padding[i], -np.inf, ends[i]), kind="stable")[:N_BEST]
        null[sample] = min(null[sample], float(starts[i][0] + ends[i][0]))
        for s in s_top:
            for e in e_top:
                if offsets[s] is None or offsets[e] is None or not 1 <= e - s + 1 <= MAX_ANSWER_TOKENS:
                    continue
                score = float(starts[i][s] + ends[i][e])
                if sample not in best or score > best[sample][0]:
                    best[sample] = (score, context[offsets[s][0] : offsets[e][1]])
    spans = {e["id"]: best[i][1] if i in best else "" for i, e in enumerate(examples)}
    odds = {e["id"]: null[i] - best[i][0] if i in best else float("inf") for i, e in enumerate(examples)}
    return spans, odds


def _normalize(text: str) -> str:
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _f1(prediction: str, truth: str, v2: bool) -> float:
    p, t = _normalize(prediction).split(), _normalize(truth).split()
    if v2 and (not p or not t):  # the v2.0 script: "" against "" is a match; v1.1 has no such case
        return float(p == t)
    common = sum((collections.Counter(p) & collections.Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


def squad_scores(examples: list[dict[str, Any]], predictions: dict[str, str], v2: bool) -> dict[str, float]:
    """SQuAD F1 and EM in percent, by the v1.1 or the v2.0 script (an unanswerable question's gold is "")."""
    f1 = em = 0.0
    for e in examples:
        golds = e["answers"] or [""]
        f1 += max(_f1(predictions[e["id"]], g, v2) for g in golds)
        em += max(float(_normalize(predictions[e["id"]]) == _normalize(g)) for g in golds)
    return {"f1": 100 * f1 / len(examples), "exact_match": 100 * em / len(examples), "count": len(examples)}


def read_squad(path: Path, limit: int | None) -> list[dict[str, Any]]:
    out = []
    for article in json.loads(path.read_text())["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                golds = [] if qa.get("is_impossible") else [a["text"] for a in qa["answers"]]
                out.append({"id": qa["id"], "question": qa["question"], "context": paragraph["context"], "answers": golds})
    return out[:limit]


# ----------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=HERE, help="the unpacked model directory (default: this file's)")
    p.add_argument("--target", help="which measured target's deployment (default: the first in deployment.json)")
    p.add_argument("--question")
    p.add_argument("--context")
    p.add_argument("--eval", type=Path, help="a SQuAD-format JSON file to score")
    p.add_argument("--limit", type=int, help="its first N questions")
    p.add_argument("--seconds", type=float, default=0.0,
                   help="with --eval: time back-to-back passes (inference only, outputs not read) at least this long for samples/s")
    args = p.parse_args(argv)
    if args.eval is None and not (args.question and args.context):
        p.error("give --question and --context, or --eval FILE")
    from transformers import AutoTokenizer

    card = json.loads((args.dir / "model_card.json").read_text())
    deployment = load_deployment(args.dir, args.target)
    data, metrics = card["data"], card["metrics"]
    threshold = metrics.get("threshold")  # SQuAD v2.0: answer "" where the null odds exceed it
    tokenizer = AutoTokenizer.from_pretrained(args.dir)
    if args.eval is None:
        examples = [{"id": "q", "question": args.question, "context": args.context, "answers": []}]
    else:
        examples = read_squad(args.eval, args.limit)
    w = windows(tokenizer, examples, int(data["max_seq_length"]), int(data["doc_stride"]))
    model = Deployed(args.dir, deployment)
    starts, ends, seconds = model.run(w["arrays"])
    runs, total = 1, seconds
    if args.seconds > 0:  # timed passes on their own: inference only, like the stored (LoadGen) Offline figure
        runs, total = model.throughput(w["arrays"], args.seconds)
    spans, odds = answers(examples, w, starts, ends)
    if threshold is not None:
        spans = {k: "" if odds[k] > threshold else v for k, v in spans.items()}
    if args.eval is None:
        print(spans["q"])
        return 0
    windows_n = len(w["example"])
    print(json.dumps({
        **squad_scores(examples, spans, v2=metrics.get("task") == "squad-v2.0"), "windows": windows_n, "runs": runs,
        "stored_f1": (deployment.get("f1") or {}).get("f1", metrics.get("f1")), "inference_precision": model.config.get("INFERENCE_PRECISION_HINT"),
        "samples_per_second": runs * windows_n / total, "stored_samples_per_second": deployment["offline"]["samples_per_second"],
        "target": deployment["target"], "length_policy": model.policy, "batch": model.batch,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
