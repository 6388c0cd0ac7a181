"""Supernet worker functions on a tiny random BERT: train (resumable, cached by key), trial from it, refine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from core.types import SubnetConfig, TrialRequest

SEQ, STRIDE = 64, 16
SPACE = {"layers": [2, 4], "heads": [1, 2, 4], "ffn": {"min": 32, "max": 128, "step": 32}, "per_layer": True}


@pytest.fixture(scope="module")
def small_train(squad_files: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    from bench.teacher import quick_subset

    return quick_subset(squad_files[0], tmp_path_factory.mktemp("train"), articles=4, per_article=5)


@pytest.fixture(scope="module")
def supernet(tiny_qa_model: Path, small_train: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from search_spaces.base_models import read_config
    from search_spaces.bert.space import BertSpace
    from workers.supernet import SupernetSettings, train_supernet

    space = BertSpace.from_spec(SPACE, read_config(tiny_qa_model))
    settings = SupernetSettings(max_steps=4, batch_size=4, max_seq_length=SEQ, doc_stride=STRIDE, importance_batches=2,
                                validation_split=0.25)
    out = tmp_path_factory.mktemp("supernets") / "sn"
    metrics = train_supernet(tiny_qa_model, out, train_file=small_train, space=space, settings=settings, checkpoint_every=2)
    return out, metrics


def test_train_supernet_writes_a_reusable_directory(supernet, tiny_qa_model: Path, small_train: str) -> None:  # type: ignore[no-untyped-def]
    from search_spaces.base_models import read_config
    from search_spaces.bert.space import BertSpace
    from workers.supernet import SUPERNET_FILE, SupernetSettings, load_supernet_space, partial_dir, supernet_key

    out, metrics = supernet
    assert metrics["steps"] == 4 and metrics["peak_rss_mib"] > 0
    for k in ("heldout_f1_teacher", "heldout_f1_largest", "heldout_f1_smallest"):
        assert 0 <= metrics[k] <= 100
    info = json.loads((out / SUPERNET_FILE).read_text())
    assert info["largest"]["heads"] == [4] * 4 and info["smallest"]["ffn"] == [32, 32]
    assert (out / "config.json").is_file() and not partial_dir(out).exists()
    space = load_supernet_space(out)
    assert space.per_layer and space.ffn == (32, 64, 96, 128)
    base = read_config(tiny_qa_model)
    key = supernet_key(tiny_qa_model, small_train, BertSpace.from_spec(SPACE, base), SupernetSettings())
    assert key == supernet_key(tiny_qa_model, small_train, BertSpace.from_spec(dict(SPACE), base), SupernetSettings())
    assert key != supernet_key(tiny_qa_model, small_train, BertSpace.from_spec({**SPACE, "heads": [2, 4]}, base), SupernetSettings())
    assert key != supernet_key(tiny_qa_model, small_train, BertSpace.from_spec(SPACE, base), SupernetSettings(random_subnets=1))


def _request(tiny_qa_model: Path, supernet_dir: Path, small_train: str, eval_file: str, out: Path, subnet: SubnetConfig) -> TrialRequest:
    return TrialRequest(
        job_id="j", trial_number=0, subnet=subnet, teacher_dir=str(tiny_qa_model), train_file=small_train,
        eval_file=eval_file, max_seq_length=SEQ, doc_stride=STRIDE, max_eval_examples=12, calibration_samples=4,
        targets=("native",), output_dir=str(out), quant_subset_size=4, supernet_dir=str(supernet_dir),
    )


def test_trial_from_supernet_and_refinement(supernet, tiny_qa_model: Path, small_train: str, squad_files, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import openvino as ov

    from workers import pipeline
    from workers.pipeline import build_candidate
    from workers.refine import refine_candidate
    from workers.training_articles import training_articles_file

    calibrated_on: list[str] = []
    original = pipeline.calibration_batches
    monkeypatch.setattr(pipeline, "calibration_batches", lambda r: calibrated_on.append(r.train_file) or original(r))
    sub = SubnetConfig((0, 3), (4, 1), (128, 32))  # per-layer widths: the hwnas class
    req = _request(tiny_qa_model, supernet[0], small_train, squad_files[1], tmp_path / "t0", sub)
    built = build_candidate(req)
    assert calibrated_on == [training_articles_file(req)] != [small_train]  # a search trial calibrates on training articles only
    out = Path(built.artifact_dir)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "hwnas_bert" and "auto_map" in config and (out / "modeling_hwnas_bert.py").is_file()
    assert config["hwnas_subnet"]["heads"] == [4, 1]
    ov.Core().read_model(out / "openvino_model.xml")
    assert 0 <= built.f1 <= 100 and built.parameters > 0

    refined = refine_candidate(replace(req, output_dir=str(tmp_path / "t0-refined")), 3, before=built)
    assert refined.f1_before_refine == built.f1 and refined.exact_match_before_refine == built.exact_match
    assert "distil" in refined.stage_seconds and refined.stage_seconds["refine_steps"] == 3.0
    assert json.loads(refined.to_json())["f1_before_refine"] == built.f1

    with pytest.raises(ValueError):
        refine_candidate(replace(req, supernet_dir=None), 1)


def test_refinement_trains_only_on_the_articles_the_supernet_trained_on(supernet, tiny_qa_model: Path, small_train: str, squad_files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from core.qa.squad import load_squad, split_by_article
    from workers.training_articles import training_articles_file

    req = _request(tiny_qa_model, supernet[0], small_train, squad_files[1], tmp_path / "t1", SubnetConfig((0,), (1,), (32,)))
    kept, held = split_by_article(load_squad(small_train), 0.25, seed=0)  # the fixture's validation_split, seed 0
    path = training_articles_file(req)
    assert path != small_train and Path(path).parent == tmp_path
    titles = {e.title for e in load_squad(path)}
    assert titles == {e.title for e in kept} and not titles & {e.title for e in held}
    assert training_articles_file(req) == path  # same content, same file
    other = tmp_path / "other-train.json"
    other.write_text(Path(small_train).read_text())  # not the file the supernet split: nothing to hold out
    assert training_articles_file(replace(req, train_file=str(other))) == str(other)
    from workers.pipeline import calibration_file

    assert calibration_file(req) == path and calibration_file(replace(req, supernet_dir=None)) == small_train
