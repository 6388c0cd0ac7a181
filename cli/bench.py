"""``hwnas bench MODEL`` and ``hwnas targets``: measure an IR the way the service does; list the profiles.

``MODEL`` is an IR directory (holding ``openvino_model.xml``), an ``.xml`` file, or a model zip
as ``GET /api/v1/jobs/{id}/trials/{n}/model`` serves it (extracted to a temporary directory).
Bad input (a missing path, a truncated or corrupted zip, an unknown target) prints one line
naming the problem and exits 2; an IR OpenVINO cannot compile exits 1 with OpenVINO's message.

Profiles come from the built-ins, ``HWNAS_TARGETS_DIR`` and ``<data dir>/targets`` (where the
service stores the ones posted to it; ``--data-dir`` or ``HWNAS_DATA_DIR``).

Settings: a model zip (or IR directory) with the service's ``model_card.json`` is measured the way
its job measured it: target, precision, sequence length and batches default to the card's record
(``measurements``, ``precision``, ``data.max_seq_length``); flags override; what the card lacks comes
from the target profile. The output says where each value came from.

Heavy imports (OpenVINO, rich) happen inside the commands so ``hwnas --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.artifacts import MODEL_CARD  # light: a constant module

IR_XML = "openvino_model.xml"
EXIT_BAD_INPUT = 2
EXIT_MEASUREMENT_FAILED = 1


class ModelInputError(Exception):
    """MODEL is not something we can measure; the message names the path."""


# --------------------------------------------------------------------------- MODEL


def resolve_model(model: str | Path, workdir: Path) -> Path:
    """The IR ``.xml`` of ``model``; a zip is checked (CRCs) and extracted under ``workdir``."""
    path = Path(model)
    if path.is_dir():
        return _find_xml(path, label=str(path))
    if not path.exists():
        raise ModelInputError(f"{path}: no such file or directory")
    if path.suffix.lower() == ".xml":
        return path
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        return _extract(path, workdir)
    raise ModelInputError(f"{path}: expected an IR directory (with {IR_XML}), an .xml file or a model .zip")


def _extract(path: Path, workdir: Path) -> Path:
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()  # reads every member and checks its CRC
            if bad is not None:
                raise ModelInputError(f"{path}: corrupted zip: member {bad!r} fails its CRC check")
            zf.extractall(workdir)  # member names are sanitised: no absolute paths, no '..'
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise ModelInputError(
            f"{path}: not a readable zip archive ({exc}); the download may be truncated or corrupted"
        ) from None
    except OSError as exc:
        raise ModelInputError(f"{path}: cannot extract: {exc.strerror or exc}") from None
    return _find_xml(workdir, label=str(path))


def _find_xml(root: Path, *, label: str) -> Path:
    if (root / IR_XML).is_file():
        return root / IR_XML
    for pattern in (IR_XML, "*.xml"):
        found = sorted(p for p in root.rglob(pattern) if p.is_file())
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(str(p.relative_to(root)) for p in found[:5])
            raise ModelInputError(f"{label}: several IRs ({names}); point at one of them")
    raise ModelInputError(f"{label}: no OpenVINO IR ({IR_XML}) in it")


# --------------------------------------------------------------------------- profiles


def _load_profiles(args: argparse.Namespace) -> None:
    """Built-ins, ``HWNAS_TARGETS_DIR`` and the service's ``<data dir>/targets``."""
    from nas.config import Settings
    from targets import load_targets

    data_dir = getattr(args, "data_dir", None) or Settings().data_dir
    load_targets(Path(data_dir) / "targets")


def _console(*, stderr: bool = False) -> Any:
    """A rich console that does not squeeze tables into 80 columns when piped."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 160)


def _error(message: str) -> None:
    from rich.markup import escape

    _console(stderr=True).print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


# --------------------------------------------------------------------------- settings

FLAGS = {"target": "--target", "precision": "--precision", "seq_len": "--seq-len",
         "latency_batch": "--latency-batch", "throughput_batch": "--throughput-batch"}  # fmt: skip
LABELS = {"target": "target", "precision": "precision", "seq_len": "seq_len",
          "latency_batch": "latency batch", "throughput_batch": "throughput batch"}  # fmt: skip
PRECISIONS = ("int8", "fp32")


@dataclass
class BenchSettings:
    """What ``hwnas bench`` measures with, and where each value came from (a flag, the model card,
    the target profile, the built-in default), so its figures can be compared with the job's."""

    target: Any  # targets.HardwareTarget
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    card: str = ""  # what was found: "model_card.json (job ..., trial ...)" or why there is none
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """``seq_len 128 (model card), ...``: one line naming every value's source."""
        return ", ".join(f"{LABELS[k]} {self.values[k]} ({self.sources[k]})" for k in FLAGS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "card": self.card,
            "notes": self.notes,
            **{k: {"value": self.values[k], "source": self.sources[k]} for k in FLAGS},
        }


def read_card(xml: Path) -> tuple[dict[str, Any] | None, str]:
    """The model card beside the IR (where the service's zip puts it) and a phrase saying what was found."""
    path = xml.parent / MODEL_CARD
    if not path.is_file():
        return None, f"no {MODEL_CARD} beside the IR"
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{MODEL_CARD} is unreadable ({exc})"
    if not isinstance(card, dict):
        return None, f"{MODEL_CARD} is not a JSON object"
    who = " ".join(f"{k.split('_')[0]} {card[k]}" for k in ("job_id", "trial_number") if card.get(k) is not None)
    return card, MODEL_CARD + (f" ({who})" if who else "")


def _measurements(card: dict[str, Any]) -> list[dict[str, Any]]:
    found = card.get("measurements")
    return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def card_settings(card: dict[str, Any], target: str | None) -> dict[str, Any]:
    """The measurement settings the card records for ``target`` (None: its first measured target).

    A job measures every target at the same sequence length and Offline batch, so those come from
    any of its measurements (or ``data.max_seq_length``); the SingleStream batch is the target
    profile's, so it is taken only from a measurement on that very target."""
    ms = _measurements(card)
    own = next((m for m in ms if target is None or m.get("target") == target), None)
    job_wide = own or (ms[0] if ms else {})
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    found: dict[str, Any] = {
        "target": own.get("target") if own and target is None and isinstance(own.get("target"), str) else None,
        "precision": (own or {}).get("precision") or card.get("precision"),
        "seq_len": _positive_int(job_wide.get("seq_len")) or _positive_int(data.get("max_seq_length")),
        "latency_batch": _positive_int((own or {}).get("latency_batch")),
        "throughput_batch": _positive_int(job_wide.get("throughput_batch")),
    }
    if found["precision"] not in PRECISIONS:
        found["precision"] = None
    return {k: v for k, v in found.items() if v is not None}


def _card_profile(card: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The target profile the card's measurement on ``name`` ran with (its fingerprint keeps it)."""
    for m in _measurements(card):
        profile = (m.get("fingerprint") or {}).get("target_profile")
        if m.get("target") == name and isinstance(profile, dict):
            return profile
    return None


def _pick_target(name: str, source: str, card: dict[str, Any] | None, notes: list[str]) -> Any:
    """The named profile; a card's target unknown here is rebuilt from the profile the card recorded.
    Raises KeyError (naming the known targets) when neither has it."""
    from targets import HardwareTarget, TargetProfileError, get_target

    recorded = _card_profile(card, name) if card else None
    try:
        target = get_target(name)
    except KeyError:
        if source != "model card" or recorded is None:
            raise
        try:
            target = HardwareTarget.from_profile(recorded, source="model card")
        except TargetProfileError:
            raise KeyError(f"the model card's target {name!r} is not a profile here and its recorded profile is "
                           "invalid; pass --target") from None
        notes.append(f"target {name!r} is not a profile here: using the profile recorded in the model card")
        return target
    if recorded is not None:
        mine = target.to_profile()
        keys = ("isa", "cores", "threads", "streams")
        diff = [f"{k} {recorded.get(k)} there, {mine.get(k)} here" for k in keys if k in recorded and recorded[k] != mine.get(k)]
        if diff:
            notes.append(f"the local profile {name!r} differs from the one the card was measured with: {', '.join(diff)}")
    return target


def resolve_settings(args: argparse.Namespace, xml: Path) -> BenchSettings:
    """Flags first, then the model card, then the target profile (and int8 / native as built-ins)."""
    card, found = read_card(xml)
    recorded = card_settings(card, args.target) if card else {}
    notes: list[str] = []
    if card is None:
        found = f"none ({found}): the target profile's defaults, as for any IR"
    elif not recorded:
        found += ", which records no measurement settings"
    if args.target is not None:
        name, source = args.target, FLAGS["target"]
    elif "target" in recorded:
        name, source = recorded["target"], "model card"
    else:
        name, source = "native", "default"
    target = _pick_target(name, source, card, notes)
    profile = f"target profile {target.name}"
    defaults = {"precision": ("int8", "default"), "seq_len": (target.seq_len, profile),
                "latency_batch": (target.latency_batch, profile), "throughput_batch": (target.throughput_batch, profile)}  # fmt: skip
    settings = BenchSettings(target=target, values={"target": target.name}, sources={"target": source}, card=found, notes=notes)
    for key, (default, default_source) in defaults.items():
        flag = getattr(args, key)
        if flag is not None:
            settings.values[key], settings.sources[key] = flag, FLAGS[key]
        elif key in recorded:
            settings.values[key], settings.sources[key] = recorded[key], "model card"
        else:
            settings.values[key], settings.sources[key] = default, default_source
    return settings


# --------------------------------------------------------------------------- hwnas bench


def cmd_bench(args: argparse.Namespace) -> int:
    from workers.benchmark import measure_ir
    from targets import TargetProfileError, get_target

    try:
        _load_profiles(args)
        if args.target is not None:
            get_target(args.target)  # an unknown --target fails before any unzipping
    except KeyError as exc:
        _error(str(exc.args[0]))
        return EXIT_BAD_INPUT
    except TargetProfileError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-") as tmp:
        try:
            xml = resolve_model(args.model, Path(tmp))
            settings = resolve_settings(args, xml)
        except ModelInputError as exc:
            _error(str(exc))
            return EXIT_BAD_INPUT
        except KeyError as exc:  # the card's target is no profile here
            _error(str(exc.args[0]))
            return EXIT_BAD_INPUT
        _announce(settings, to_stderr=args.json)
        v = settings.values
        runtime_name = get_target(settings.target).runtime
        try:
            if runtime_name != "openvino":  # DeepSparse: the model.onnx beside the IR, in its own venv
                m = _measure_with(runtime_name, xml, settings, args)
            else:
                m = measure_ir(
                    xml,
                    target=settings.target,
                    precision=v["precision"],
                    seq_len=v["seq_len"],
                    latency_batch=v["latency_batch"],
                    throughput_batch=v["throughput_batch"],
                    min_iterations=args.iterations,
                    min_seconds=args.seconds,
                    min_repeats=args.min_repeats,
                    max_repeats=args.max_repeats,
                    max_spread_pct=args.max_spread,
                )
        except (RuntimeError, ValueError, FileNotFoundError) as exc:
            _error(str(exc))
            return EXIT_MEASUREMENT_FAILED
    if args.json:
        print(json.dumps({"model": str(args.model), "measurement": m.to_dict(), "settings": settings.to_dict()}), flush=True)
    else:
        _print_measurement(str(args.model), m)
    return 0


def _measure_with(runtime_name: str, xml: Path, settings: BenchSettings, args: argparse.Namespace) -> Any:
    """The target's own runtime (its profile's ``runtime``); ``RuntimeError`` naming how to install it when absent."""
    from workers.runtimes import get_runtime

    runtime = get_runtime(runtime_name)
    why = runtime.unavailable()
    if why is not None:
        raise RuntimeError(f"target {settings.target}: {why}")
    v = settings.values
    return runtime.measure(
        xml, target=settings.target, precision=v["precision"], seq_len=v["seq_len"], throughput_batch=v["throughput_batch"],
        min_iterations=args.iterations, min_seconds=args.seconds, max_repeats=args.max_repeats,
    )  # fmt: skip


def _announce(settings: BenchSettings, *, to_stderr: bool) -> None:
    """Before measuring: where the settings came from (stderr under --json, whose stdout is one JSON line)."""
    from rich.markup import escape

    out = _console(stderr=to_stderr)
    out.print(escape(f"model card: {settings.card}"), soft_wrap=True)
    out.print(escape(f"settings: {settings.describe()}"), soft_wrap=True)
    for note in settings.notes:
        out.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)


def _print_measurement(model: str, m: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    fp = m.fingerprint
    mode = "[yellow]emulated[/yellow]" if fp.get("emulated") else "[green]native[/green]"
    table = Table(title=escape(f"hwnas bench {model}"), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    profile = fp.get("target_profile") or {}
    asked = profile.get("threads") or profile.get("cores")
    threads = f"{fp.get('threads')} threads" + (f", profile asks {asked}" if asked else "")
    rows = [
        ("target", f"{m.target}  {mode}, ISA cap {fp.get('isa_cap') or 'none'}"),
        ("host", escape(f"{fp.get('cpu_model_name')} [{fp.get('microarchitecture')}], {fp.get('logical_cpus')} CPUs")),
        ("precision", f"{m.precision} (runs as {fp.get('inference_precision')})"),
        ("seq_len", str(m.seq_len)),
        (
            f"SingleStream b={m.latency_batch}",
            f"p50 {m.p50_ms:.3f} ms   p90 {m.p90_ms:.3f} ms   p99 {m.p99_ms:.3f} ms   ({threads})",
        ),
        (
            f"Offline b={m.throughput_batch}",
            f"{m.throughput_sps:.1f} samples/s   ({fp.get('streams')} streams, {fp.get('nireq')} requests)",
        ),
        (
            "repeats",
            f"{fp.get('repeats')}: p50 spread {fp.get('spread_pct', 0):.2f}%, throughput spread "
            f"{fp.get('throughput_spread_pct', 0):.2f}%" + _convergence(fp.get("converged")),
        ),
        ("nice", str(fp.get("nice"))),
        ("openvino", str(fp.get("openvino_version"))),
    ]
    for k, v in rows:
        table.add_row(k, v)
    _console().print(table)


def _convergence(converged: bool | None) -> str:
    if converged is None:
        return "  (single repeat)"
    return "" if converged else "  [yellow](not converged: repeats capped)[/yellow]"


def add_bench_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help="measure an OpenVINO IR (directory, .xml or model zip) for a hardware target, like the service does",
    )
    p.add_argument("model", help="IR directory with openvino_model.xml, an .xml file, or a downloaded model .zip")
    p.add_argument("--target", help="hardware target profile (see `hwnas targets`; default: the model card's, else native)")
    p.add_argument("--precision", choices=PRECISIONS, help="fp32 compiles with f32 precision (default: the card's, else int8)")
    p.add_argument("--seq-len", type=int, help="default: the model card's, else the target profile's")
    p.add_argument("--latency-batch", type=int, help="SingleStream batch (default: the card's, else the profile's)")
    p.add_argument("--throughput-batch", type=int, help="Offline batch (default: the card's, else the profile's)")
    p.add_argument("--iterations", type=int, default=50, help="minimum calls per scenario and repeat")
    p.add_argument("--seconds", type=float, default=2.0, help="minimum seconds per scenario and repeat")
    p.add_argument("--min-repeats", type=int, default=2)
    p.add_argument("--max-repeats", type=int, default=5)
    p.add_argument("--max-spread", type=float, default=2.0, help="stop repeating once the p50s agree within this %%")
    p.add_argument("--data-dir", type=Path, help="service data directory whose targets/ holds user profiles")
    p.add_argument("--json", action="store_true", help="print {model, measurement} as one JSON line")
    p.set_defaults(func=cmd_bench)
    return p


# --------------------------------------------------------------------------- hwnas targets


def describe_targets() -> dict[str, Any]:
    """Profiles and this machine, as ``GET /api/v1/targets`` returns them."""
    from targets import TARGETS, detect_cpu, is_native, native_target

    cpu = detect_cpu()
    return {
        "host": {**cpu, "native_target": native_target(cpu)},
        "targets": [
            {**t.to_profile(), "source": t.source, "native_here": is_native(t, cpu)} for t in TARGETS.values()
        ],
        "targets_dirs": [str(d) for d in TARGETS.directories()],
    }


def cmd_targets(args: argparse.Namespace) -> int:
    from targets import TargetProfileError

    try:
        _load_profiles(args)
        info = describe_targets()
    except TargetProfileError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps(info), flush=True)
        return 0
    _print_targets(info)
    return 0


def _print_targets(info: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    def show(v: Any, default: str = "-") -> str:
        return default if v is None else escape(str(v))

    host = info["host"]
    table = Table(title="hardware targets", title_justify="left")
    for col in ("name", "ISA cap", "cores", "threads", "streams", "seq_len", "batch SS/Offline", "here", "source"):
        table.add_column(col, no_wrap=col != "source")
    for t in info["targets"]:
        here = "[green]native[/green]" if t["native_here"] else "[yellow]emulated[/yellow]"
        sc = t["scenarios"]
        table.add_row(
            escape(t["name"]),
            show(t["isa"], "none"),
            show(t["cores"], "all"),
            show(t["threads"], "auto"),
            show(t["streams"], "auto"),
            str(t["seq_len"]),
            f"{sc['single_stream']['batch']} / {sc['offline']['batch']}",
            here,
            show(t["source"]),
        )
    console = _console()
    console.print(table)
    machine = escape(
        f"{host['model_name']} [{host['microarchitecture']}], {host['logical_cpus']} CPUs, "
        f"flags {' '.join(host['flags']) or 'none'}"
    )
    console.print(f"this machine: {machine}; measures [bold]{escape(host['native_target'])}[/bold] natively")
    dirs = [d + ("" if Path(d).is_dir() else " (none yet)") for d in info["targets_dirs"]]
    console.print(escape(f"user profile directories: {', '.join(dirs) or 'none'} (HWNAS_TARGETS_DIR, <data dir>/targets)"))


def add_targets_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("targets", help="list the hardware target profiles and what this machine is")
    p.add_argument("--data-dir", type=Path, help="service data directory whose targets/ holds user profiles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_targets)
    return p


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m cli.bench bench ...``); ``hwnas`` wires the same parsers."""
    parser = argparse.ArgumentParser(prog="python -m cli.bench")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    add_targets_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
