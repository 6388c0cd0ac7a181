"""CPU detection and target lookup; the microarchitecture table is tested on synthetic cpuid values."""

from __future__ import annotations

import pytest

from workers.targets import (
    RELEVANT_FLAGS,
    TARGETS,
    detect_cpu,
    get_target,
    is_native,
    microarchitecture,
    parse_cpuinfo,
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
        (INTEL, 19, 1, [], "unknown"),
        (AMD, 25, 1, ["avx2"], "zen3"),
        (AMD, 25, 17, ["avx2", "avx512f"], "zen4"),
        (AMD, 26, 2, ["avx512f"], "zen5"),
        (AMD, 23, 49, [], "unknown"),
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
    with pytest.raises(KeyError, match="known targets: native, cascadelake, icelake, sapphirerapids"):
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
