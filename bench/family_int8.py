"""The INT8 method check per family: does the service's NNCF recipe keep a trained model's answers?

Only MiniLM is packaged, so each family's check runs on a tiny model trained here from random weights
on the SQuAD train slice (the teacher's own training loop, ``workers.teacher.train_teacher``). Its FP32
IR and its INT8 IR (``workers.quantize.quantize_int8``, exactly what trials run, calibrated on train
windows) answer the same questions of the evaluation file; the F1 drop and the share of questions
whose answer text changed show a family whose quantization scopes are wrong (a quantized LayerNorm or
softmax input, an embedding sum) long before a real checkpoint would. No hyper-parameter is chosen on
the evaluation file: the training settings are fixed, and the file only scores.

Used by ``bench.families`` (its second table) and on its own:

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.family_int8 --families roberta deberta-v2 --steps 300
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import DATA, ROOT
from bench.family_models import FAMILIES, calibration_windows, tiny_family_model

# A tiny encoder that learns something in a few minutes on 2 cores (from random weights, F1 ~10-20)
TINY = {"hidden": 128, "layers": 2, "heads": 4, "ffn": 512}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=600, help="training steps of each tiny model (batch 32)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="from random weights: higher than a fine-tune's")
    p.add_argument("--questions", type=int, default=400, help="questions of the evaluation file scored")
    p.add_argument("--check-seq-len", type=int, default=128, help="window length of training, calibration and scoring")
    p.add_argument("--check-calibration", type=int, default=64, help="NNCF calibration windows (train file)")


def answers(compiled: Any, examples: Any, features: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(v1.1 scores, predicted answer per question id) of a compiled IR."""
    from core.qa.features import postprocess_predictions
    from core.qa.tasks import get_task
    from workers.evaluate import _logits, openvino_runner

    start, end = _logits(openvino_runner(compiled), features, 32, False)
    predictions = postprocess_predictions(examples, features, start, end)
    return get_task("squad-v1.1").score(predictions, examples), predictions


def check_family(family: str, *, train_file: str, eval_file: str, work: Path, steps: int, learning_rate: float,
                 questions: int, seq_len: int, calibration: int) -> dict[str, Any]:  # fmt: skip
    """Train a tiny ``family`` QA model, then score its FP32 and INT8 IRs on ``questions`` eval questions."""
    import openvino as ov
    from transformers import AutoModelForQuestionAnswering

    from core.qa.features import prepare_eval_features
    from core.qa.squad import load_squad
    from search_spaces.training_settings import TrainSettings
    from workers import datasets
    from workers.export import save_ir, to_openvino
    from workers.quantize import quantize_int8
    from workers.teacher import train_teacher

    began = time.perf_counter()
    base = tiny_family_model(family, work / f"{family}-random", train_file, **TINY)
    trained = work / f"{family}-trained"
    settings = TrainSettings(max_steps=steps, learning_rate=learning_rate, batch_size=32, warmup_ratio=0.1, seed=0)
    train_teacher(base, trained, train_file=train_file, eval_file=None, max_seq_length=seq_len, doc_stride=seq_len // 2,
                  settings=settings, checkpoint_every=None)  # fmt: skip
    train_s = time.perf_counter() - began
    tok = datasets.tokenizer(trained)
    model = AutoModelForQuestionAnswering.from_pretrained(trained).eval()
    fp32 = to_openvino(model, seq_len=seq_len)
    fp32_xml = save_ir(fp32, work / family / "fp32")
    int8 = quantize_int8(ov.Core().read_model(fp32_xml), calibration_windows(tok, train_file, seq_len, calibration), subset_size=calibration)
    examples = load_squad(eval_file, limit=questions)
    features = prepare_eval_features(examples, tok, max_seq_length=seq_len, doc_stride=seq_len // 2)
    core = ov.Core()
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}  # both in f32 arithmetic: the drop is the quantizers', not bf16's
    fp32_scores, fp32_answers = answers(core.compile_model(fp32_xml, "CPU", f32), examples, features)
    int8_scores, int8_answers = answers(core.compile_model(int8, "CPU", f32), examples, features)
    changed = sum(fp32_answers[k] != int8_answers.get(k) for k in fp32_answers)
    return {
        "family": family, "steps": steps, "questions": len(examples), "train_s": round(train_s, 1),
        "fp32_f1": fp32_scores["f1"], "int8_f1": int8_scores["f1"], "drop": fp32_scores["f1"] - int8_scores["f1"],
        "answers_changed_pct": 100.0 * changed / max(1, len(fp32_answers)), "seconds": round(time.perf_counter() - began, 1),
    }  # fmt: skip


def table(rows: list[dict[str, Any]], seq_len: int) -> list[str]:
    """Markdown lines of the method check (``bench.families`` puts them under its speed table)."""
    if not rows:
        return []
    lines = [
        f"INT8 method check on tiny trained models ({TINY['layers']} layers, hidden {TINY['hidden']}, {TINY['heads']} heads, "
        f"FFN {TINY['ffn']}, trained from random weights on the train slice; sequence length {seq_len}): F1 of the same "
        "XQuAD-en questions from the FP32 IR and from the INT8 IR the trials' recipe makes, both run in f32 arithmetic.",
        "",
        "| family | steps trained | questions | FP32 F1 | INT8 F1 | drop (points) | answers changed |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in rows:
        lines.append(f"| {a['family']} | {a['steps']} | {a['questions']} | {a['fp32_f1']:.2f} | {a['int8_f1']:.2f} | "
                     f"{a['drop']:+.2f} | {a['answers_changed_pct']:.1f}% |")  # fmt: skip
    return lines


def run_checks(families: list[str], args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    rows = []
    for family in families:
        rows.append(check_family(family, train_file=args.train_file, eval_file=args.eval_file, work=work, steps=args.steps,
                                 learning_rate=args.learning_rate, questions=args.questions, seq_len=args.check_seq_len,
                                 calibration=args.check_calibration))  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.family_int8", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--train-file", default=str(DATA / "squad-v1.1-train-head.json"))
    p.add_argument("--eval-file", default=str(DATA / "xquad-en.json"))
    add_arguments(p)
    p.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--no-output", action="store_true", help="print the table only")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hwnas-int8-check-") as tmp:
        rows = run_checks(args.families, args, Path(tmp))
    body = "\n".join(section(rows, args))
    print(body)
    if not args.no_output:
        from bench.report import replace_section

        replace_section(Path(args.output), "family-int8", body)
    return 0


def section(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """The BENCHMARKS.md section of a standalone run: command and CPU, then the table."""
    from bench.report import invocation
    from targets.cpu import detect_cpu

    cpu = detect_cpu()
    return ["## INT8 method check per model family", "", f"`{invocation()}`", "",
            f"CPU: {cpu['model_name']} ({cpu.get('microarchitecture', '?')}), {cpu['logical_cpus']} logical CPUs.", "",
            *table(rows, args.check_seq_len)]  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
