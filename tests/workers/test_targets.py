"""CPU detection, target profiles as data, lookup; the microarchitecture table is tested on synthetic cpuid values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from targets import (
    BUILTIN_DIR,
    RELEVANT_FLAGS,
    TARGETS,
    TARGETS_DIR_ENV,
    HardwareTarget,
    TargetExistsError,
    TargetProfileError,
    TargetRegistry,
    detect_cpu,
    get_target,
    is_native,
    load_targets,
    microarchitecture,
    native_target,
    parse_cpuinfo,
    register_target,
)

INTEL, AMD = "GenuineIntel", "AuthenticAMD"


@pytest.mark.parametrize(
    ("vendor", "family", "model", "flags", "expected"),
    [
        (INTEL, 6, 85, ["avx512f"], "skylake"),
        (INTEL, 6, 85, ["avx512f", "avx512_vnni"], "cascadelake"),
        (INTEL, 6, 106, [], "icelake"),
        (INTEL, 6, 108, [], "icelake"),
        (INTEL, 6, 143, [], "sapphirerapids"),
        (INTEL, 6, 207, [], "emeraldrapids"),
        (INTEL, 6, 173, [], "graniterapids"),
        (INTEL, 6, 174, [], "graniterapids"),
        (INTEL, 6, 42, [], "unknown"),
        (INTEL, 6, 167, ["avx512f", "amx_int8", "amx_bf16", "avx512_fp16"], "sapphirerapids"),
        (INTEL, 6, 167, ["avx512f", "avx512_vnni"], "unknown"),
        (INTEL, 19, 1, [], "unknown"),
        (AMD, 25, 1, ["avx2"], "zen3"),
        (AMD, 23, 49, ["avx2"], "zen2"),  # EPYC Rome, as a 2-vCPU VM reports it
        (AMD, 23, 1, ["avx2"], "zen"),
        (AMD, 25, 17, ["avx2", "avx512f"], "zen4"),
        (AMD, 26, 2, ["avx512f"], "zen5"),
        (AMD, 24, 0, [], "unknown"),  # Hygon
        ("", None, None, [], "unknown"),
    ],
)
def test_microarchitecture(vendor, family, model, flags, expected):
    assert microarchitecture(vendor, family, model, flags) == expected


def test_parse_cpuinfo_reads_first_processor_only():
    text = (
        "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
        "model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: avx2 amx_tile\n\n"
        "processor\t: 1\nmodel\t\t: 1\n"
    )
    fields = parse_cpuinfo(text)
    assert fields["model"] == "143"
    assert fields["model name"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert fields["flags"] == "avx2 amx_tile"


def test_detect_cpu_on_this_host():
    cpu = detect_cpu()
    assert cpu["vendor"]
    assert cpu["model_name"]
    assert cpu["logical_cpus"] >= 1
    assert set(cpu["flags"]) <= set(RELEVANT_FLAGS)
    assert cpu["microarchitecture"] == microarchitecture(cpu["vendor"], cpu["family"], cpu["model"], cpu["flags"])
    if cpu["vendor"] in (INTEL, AMD):
        assert "avx2" in cpu["flags"]  # every x86 host this project targets has AVX2


def test_get_target_and_unknown_name():
    assert get_target("cascadelake").isa == "AVX512_CORE_VNNI"
    assert get_target("native").isa is None
    with pytest.raises(KeyError, match="known targets: native, cascadelake, deepsparse, icelake, sapphirerapids"):
        get_target("pentium")


def test_bf16_follows_isa_cap():
    assert TARGETS["native"].has_bf16
    assert TARGETS["sapphirerapids"].has_bf16
    assert not TARGETS["cascadelake"].has_bf16
    assert not TARGETS["icelake"].has_bf16


def test_is_native():
    spr = {"microarchitecture": "sapphirerapids"}
    assert is_native(TARGETS["native"], spr)
    assert is_native(TARGETS["sapphirerapids"], spr)
    assert not is_native(TARGETS["cascadelake"], spr)


# --------------------------------------------------------------------------- profiles as data

ICELAKE_8C = {
    "name": "icelake-8c",
    "description": "c6i.4xlarge slice",
    "microarchitecture": "icelake",
    "isa": "avx512_core_vnni",
    "cores": 8,
    "threads": 8,
    "streams": 2,
    "seq_len": 256,
    "scenarios": {"single_stream": {"batch": 1}, "offline": {"batch": 32}},
}


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HWNAS_TARGETS_DIR; the global registry is reset before and after."""
    d = tmp_path / "targets"
    d.mkdir()
    monkeypatch.setenv(TARGETS_DIR_ENV, str(d))
    TARGETS.reset()
    yield d
    TARGETS.reset()


def write(d: Path, name: str, profile: dict | str) -> Path:
    path = d / name
    path.write_text(profile if isinstance(profile, str) else yaml.safe_dump(profile))
    return path


def test_builtin_profiles_are_yaml_files():
    assert sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")) == ["cascadelake", "deepsparse", "icelake", "native", "sapphirerapids"]
    reg = TargetRegistry()
    assert list(reg) == ["native", "cascadelake", "deepsparse", "icelake", "sapphirerapids"]
    clx = reg["cascadelake"]
    assert (clx.isa, clx.cores, clx.threads, clx.seq_len) == ("AVX512_CORE_VNNI", 4, 4, 384)
    assert (clx.latency_batch, clx.throughput_batch, clx.source) == (1, 16, "builtin")
    assert reg["sapphirerapids"].isa == "AVX512_CORE_AMX"
    assert reg["native"].isa is None and reg["native"].thread_cap is None


def test_profiles_ship_as_package_data():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "profiles/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["targets"]


def test_user_profiles_come_from_env_dir_read_at_load_time(user_dir: Path, monkeypatch: pytest.MonkeyPatch):
    reg = TargetRegistry()  # constructing (or importing) reads nothing
    write(user_dir, "icelake-8c.yaml", ICELAKE_8C)
    assert list(reg)[-1] == "icelake-8c"  # built-ins first, then user profiles
    t = reg["icelake-8c"]
    assert (t.isa, t.threads, t.streams, t.seq_len, t.throughput_batch) == ("AVX512_CORE_VNNI", 8, 2, 256, 32)
    assert t.source == str(user_dir / "icelake-8c.yaml")
    monkeypatch.delenv(TARGETS_DIR_ENV)
    assert "icelake-8c" in reg  # loaded once ...
    assert "icelake-8c" not in reg.load()  # ... until load() reads the environment again


def test_get_target_rereads_for_a_new_file(user_dir: Path):
    assert "icelake-8c" not in TARGETS
    write(user_dir, "mine.yml", ICELAKE_8C)
    assert get_target("icelake-8c").cores == 8


@pytest.mark.parametrize(
    ("content", "field", "says"),
    [
        ({**ICELAKE_8C, "isa": "AVX9000"}, "isa", "unknown oneDNN ISA"),
        ({**ICELAKE_8C, "thread": 4}, "thread", "Extra inputs"),
        ({**ICELAKE_8C, "threads": 0}, "threads", "greater than or equal to 1"),
        ({**ICELAKE_8C, "name": "Bad Name"}, "name", "pattern"),
        ({**ICELAKE_8C, "scenarios": {"offline": {"batch": "many"}}}, "scenarios.offline.batch", "integer"),
        ({k: v for k, v in ICELAKE_8C.items() if k != "name"}, "name", "Field required"),
        ("name: [unclosed\n", None, "not valid YAML"),
        ("- a list\n", None, "must be a mapping"),
    ],
)
def test_bad_profile_file_names_file_and_field(user_dir: Path, content, field, says):
    path = write(user_dir, "bad.yaml", content)
    with pytest.raises(TargetProfileError, match=says) as exc:
        load_targets()
    assert str(path) in str(exc.value)
    if field:
        assert exc.value.field == field and f"{field}:" in str(exc.value)


def test_user_profile_cannot_shadow_a_builtin(user_dir: Path):
    write(user_dir, "clx.yaml", {**ICELAKE_8C, "name": "cascadelake"})
    with pytest.raises(TargetExistsError, match="clx.yaml: name: target 'cascadelake' is already defined by builtin"):
        load_targets()


def test_targets_dir_not_yet_created_is_skipped_but_a_file_is_an_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(TARGETS_DIR_ENV, str(tmp_path / "not-yet"))
    assert list(TargetRegistry()) == ["native", "cascadelake", "deepsparse", "icelake", "sapphirerapids"]
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(TARGETS_DIR_ENV, str(tmp_path / "a-file"))
    with pytest.raises(TargetProfileError, match="a-file: not a directory"):
        TargetRegistry().load()


def test_register_target_validates_and_persists(user_dir: Path, tmp_path: Path):
    with pytest.raises(TargetProfileError, match="isa") as exc:
        register_target({**ICELAKE_8C, "isa": 512})
    assert exc.value.field == "isa"
    t = register_target({"name": "avx2-2c", "isa": "AVX2", "cores": 2})
    assert (t.thread_cap, t.has_bf16, t.source) == (2, False, "registered")
    assert get_target("avx2-2c") is t and "avx2-2c" in load_targets()  # survives a reload
    with pytest.raises(TargetExistsError):
        register_target({"name": "avx2-2c"})
    saved = tmp_path / "saved"
    t = register_target(ICELAKE_8C, directory=saved)
    assert t.source == str(saved / "icelake-8c.yaml")
    assert yaml.safe_load((saved / "icelake-8c.yaml").read_text()) == {**ICELAKE_8C, "isa": "AVX512_CORE_VNNI"}
    TARGETS.reset()
    assert load_targets(saved)["icelake-8c"] == t  # read back from the file, equal field by field


def test_native_follows_the_profile_microarchitecture():
    icx_host, zen5_host = {"microarchitecture": "icelake"}, {"microarchitecture": "zen5"}
    icx8 = HardwareTarget.from_profile(ICELAKE_8C)
    assert is_native(icx8, icx_host) and not is_native(icx8, zen5_host)
    assert is_native(TARGETS["icelake"], icx_host)  # a worker on a real Ice Lake measures icelake natively
    assert is_native(HardwareTarget.from_profile({"name": "host-4t", "threads": 4}), zen5_host)
    assert not is_native(HardwareTarget("avx2", "AVX2"), zen5_host)
    assert native_target(icx_host) == "icelake" and native_target(zen5_host) == "native"


def test_get_target_passes_a_target_through():
    adhoc = HardwareTarget("avx2", "AVX2", threads=1)
    assert get_target(adhoc) is adhoc
