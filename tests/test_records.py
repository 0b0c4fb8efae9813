"""The files tpru writes besides samples (`tpru.records`): round trips, the files the
tpru before these records wrote, versions, and errors that name the file.

The ``OLD_*`` fixtures are what tpru wrote before the records existed (a
``tpru build`` of synthetic episodes, ``tpru eval --model random`` and
``tpru audit --model random`` on it), nested reports cut short; ``_old_*``
serialise them exactly as that code did.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.eval.report import load_run
from tpru.eval.run_folder import read_results
from tpru.records import (
    AuditGroup,
    AuditRecord,
    BenchmarkFingerprint,
    BuildRecord,
    ResultLine,
    RunRecord,
    SchemaVersionError,
)
from tpru.schema import SCHEMA_VERSION

OLD_RESULT: dict[str, Any] = {
    "id": "gui/ep000/w0/ordering", "benchmark": "tpru-dataset", "task": "ordering",
    "category": "missing", "scenario": "gui", "negative": True, "answerable": None,
    "counterpart": "gui/ep000/w0/ordering/twin", "answer": "E", "prediction": "C",
    "rule": "answer_tag", "correct": False, "response": "<answer>C</answer>", "error": None,
    "question": "These 4 images, labeled as 1, 2, 3, and 4, are out of order. What order puts "
                "them in chronological sequence?\nImage 1: <image>\nImage 2: <image>\n"
                "Image 3: <image>\nImage 4: <image>",
    "options": ["4 1 2 3", "4 2 1 3", "4 1 3 2", "4 3 1 2", "None of the choices provided"],
    "images": ["/data/ds/images/63/6300ce4bf675aabc37f8d9b7a70ad785.jpg",
               "/data/ds/images/24/24767d986a685afad5391285a237fea4.jpg",
               "/data/ds/images/bd/bdd8837a117926f1fd34a479deba900c.jpg",
               "/data/ds/images/fb/fbbdcb723f6fe6f72fc8fb1c87ae29b0.jpg"],
    "usage": {}}

OLD_RUN: dict[str, Any] = {
    "tpru_version": "0.1.0", "model": "random", "backend": "random",
    "backend_options": {"seed": 0}, "benchmark": "tpru-dataset",
    "benchmark_source": "/data/ds", "split": "test", "prompt": "tpru", "seed": 0, "limit": 2,
    "max_new_tokens": 1024, "temperature": 0.0, "batch_size": 8,
    "benchmark_fingerprint": {
        "items": 2,
        "sha256": "5f7f62518f4c78ddba69ae07b336709de98e7f57f6a8680f53a8d5f074112ca8"},
    "started": "2026-12-07T03:27:25+00:00", "resumed": [],
    "finished": "2026-12-07T03:27:25+00:00",
    "counts": {"items": 2, "answered": 2, "errors": 0, "correct": 1, "skipped": 0},
    "skipped": {"counts": {}, "examples": {}}}

OLD_BUILD: dict[str, Any] = {
    "config": {"seed": 0, "sources": ["frames:/data/eps"],
               "probes": {"max_lift": 0.05, "min_samples": 100},
               "split": {"join_min_frames": 2, "near_dup_hamming": 4,
                         "ratios": {"test": 0.5, "train": 0.5}},
               "sim": {"episodes": 24, "frames": 6, "out": None, "seed": 0,
                       "size": [320, 240]}},
    "content_hash": "sha256:74d1e56b2a6a805abd5f348e8a80ae282b2b0ab621ddeac52effb68826d43701",
    "counts": {"episodes_by_split": {"test": 8, "train": 8}, "episodes_dropped": 0,
               "episodes_kept": 16, "frames_kept": 80, "frames_read": 80, "images": 80,
               "missing_asked_as_positive": 2,
               "samples": {"test": {"next_frame": 9, "ordering": 9, "prev_frame": 11},
                           "train": {"next_frame": 8, "ordering": 8, "prev_frame": 8}},
               "samples_total": 53},
    "drop_examples": {},
    "drops": {"episodes": {}, "frames": {}, "inputs": {}, "samples": {}},
    "probes": {"leaks": [], "max_lift": 0.05, "min_samples": 100, "tasks": {
        "next_frame": {"n": 17, "negative_share": 0.1765, "own_episode_tv": 0.0, "probes": {
            "always_none": {"accuracy": 0.1765, "chance": 0.1765, "high": 0.4103,
                            "leaks": False, "lift": 0.0, "low": 0.0619, "n": 17,
                            "reads": "options", "reference": True, "within": True}}}}},
    "schema_version": 1, "seed": 0,
    "split_report": {
        "episodes_by_scenario": {"gui": {"test": 2, "train": 2}},
        "episodes_in_joined_groups": 2, "join_min_frames": 2, "joined_groups": 1,
        "largest_groups": [{"apart_at_join_min_frames": 6,
                            "episodes": ["gui/ep000", "gui/ep003"], "joined_pairs": 1,
                            "most_shared_frames": 5, "scenario": "gui", "size": 2,
                            "split": "test"}],
        "shared_across_splits": {"examples": [], "images": 0}},
    "splits": ["train", "test"], "tpru_version": "0.1.0", "warnings": []}

OLD_STAGES: dict[str, Any] = {"model": "openai:rule", "judge": {"kept": 20, "rejected": 4},
                              "describe": {"written": 3}}

OLD_AUDIT: dict[str, Any] = {
    "schema_version": 1, "tpru_version": "0.1.0", "model": "random", "dataset": "/data/ds",
    "controls": ["blind", "shuffled"], "split": None, "limit": 3, "items": 3, "seed": 0,
    "prompt": None, "max_new_tokens": 1024, "threshold": None, "min_samples": 20,
    "runs": {"blind": {"path": "blind", "items": 3, "errors": 0},
             "shuffled": {"path": "shuffled", "items": 3, "errors": 0}},
    "probes": {"max_lift": 0.05, "min_samples": 100, "leaks": [], "tasks": {}},
    "groups": [
        {"control": "blind", "by": "overall", "group": "overall", "n": 3, "correct": 1,
         "accuracy": 0.3333333333333333, "chance": 0.14722222222222223,
         "lift": 0.1861111111111111, "low": 0.0, "high": 1.0},
        {"control": "blind", "by": "task", "group": "next_frame", "n": 1, "correct": 1,
         "accuracy": 1.0, "chance": 0.2, "lift": 0.8, "low": 1.0, "high": 1.0}],
    "failures": [], "passed": True}


def _old_result(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


def _old_run(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _old_build(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _old_audit(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _group(**changes: Any) -> AuditGroup:
    fields: dict[str, Any] = dict(control="shuffled", by="task", group="ordering", n=40,
                                  correct=12, accuracy=0.3, chance=0.2, lift=0.1, low=0.175,
                                  high=0.45)
    fields.update(changes)
    return AuditGroup(**fields)


# ------------------------------------------------------------------ round trips


def test_a_result_line_round_trips_through_its_text() -> None:
    line = ResultLine(id="t1", correct=False, answer="CABD", benchmark="tpru-test",
                      task="ordering", scenario="lego", negative=False, counterpart="t1/twin",
                      prediction="ABCD", rule="answer_tag", response="<answer>ABCD</answer>",
                      question="Order them: <image> <image>", options=None,
                      images=("a.jpg", "b.jpg"), usage={"prompt_tokens": 120})
    text = line.dumps()
    assert "\n" not in text and text.startswith('{"schema_version": 1, "id": "t1"')
    assert ResultLine.from_dict(json.loads(text)) == line


def test_a_run_record_round_trips_through_its_file(tmp_path: Path) -> None:
    record = RunRecord(tpru_version="0.1.0", model="m", backend="hf:m",
                       backend_options={"dtype": "bfloat16"}, benchmark="muirbench",
                       benchmark_source="MUIRBENCH/MUIRBENCH", split="test", prompt="muirbench",
                       seed=3, limit=None, max_new_tokens=64, temperature=0.7, batch_size=4,
                       benchmark_fingerprint=BenchmarkFingerprint(10, "ab" * 32),
                       started="2026-01-01T00:00:00+00:00",
                       resumed=("2026-01-02T00:00:00+00:00",), finished=None,
                       counts={"items": 10, "answered": 9, "errors": 1, "correct": 5,
                               "skipped": 0},
                       skipped={"counts": {}, "examples": {}})
    path = _write(tmp_path / "run.json", record.dumps())
    assert RunRecord.load(path) == record
    assert path.read_text().startswith('{\n  "schema_version": 1,\n')


@pytest.mark.parametrize("stages", [None, OLD_STAGES])
def test_a_build_record_round_trips_through_its_file(tmp_path: Path,
                                                      stages: dict[str, Any] | None) -> None:
    record = replace(BuildRecord.from_dict(OLD_BUILD), model_stages=stages)
    path = _write(tmp_path / "build.json", record.dumps())
    assert BuildRecord.load(path) == record
    assert ("model_stages" in json.loads(path.read_text())) is (stages is not None)


def test_a_build_record_before_its_hash_leaves_the_hash_out() -> None:
    record = replace(BuildRecord.from_dict(OLD_BUILD), content_hash=None)
    assert "content_hash" not in record.to_dict()


def test_an_audit_record_round_trips_through_its_file(tmp_path: Path) -> None:
    failing = _group(lift=0.3, accuracy=0.5)
    record = AuditRecord(model="hf:m", dataset="/data/ds", controls=("blind", "shuffled"),
                         items=40, seed=0, max_new_tokens=256, min_samples=20, passed=False,
                         tpru_version="0.1.0", split="test", threshold=0.15,
                         runs={"blind": {"path": "blind", "items": 40, "errors": 0}},
                         probes={"leaks": []}, groups=(_group(), failing),
                         failures=(failing,))
    path = _write(tmp_path / "audit.json", record.dumps())
    assert AuditRecord.load(path) == record


# ------------------------------------------------ files as the tpru before these wrote them


def test_a_results_line_from_before_reads_as_version_1() -> None:
    text = _old_result(OLD_RESULT)
    line = ResultLine.from_dict(json.loads(text), "results.jsonl, line 1")
    assert (line.id, line.correct, line.prediction, line.negative) == (
        "gui/ep000/w0/ordering", False, "C", True)
    assert line.options is not None and len(line.options) == 5
    # The same line, with the version it always had now written first.
    assert line.dumps() == '{"schema_version": 1, ' + text[1:]


def test_a_run_json_from_before_reads_and_is_written_the_same_but_for_its_version(
        tmp_path: Path) -> None:
    path = _write(tmp_path / "run.json", _old_run(OLD_RUN))
    record = RunRecord.load(path)
    assert record.benchmark_fingerprint == BenchmarkFingerprint(2, OLD_RUN[
        "benchmark_fingerprint"]["sha256"])
    assert (record.model, record.split, record.temperature, record.resumed) == (
        "random", "test", 0.0, ())
    old = path.read_text()
    assert record.dumps() == old.replace("{\n", '{\n  "schema_version": 1,\n', 1)


def test_a_build_json_from_before_is_written_back_byte_for_byte(tmp_path: Path) -> None:
    for data in (OLD_BUILD, {**OLD_BUILD, "model_stages": OLD_STAGES}):
        path = _write(tmp_path / "build.json", _old_build(data))
        assert BuildRecord.load(path).dumps() == path.read_text()


def test_an_audit_json_from_before_is_written_back_byte_for_byte(tmp_path: Path) -> None:
    path = _write(tmp_path / "audit.json", _old_audit(OLD_AUDIT))
    record = AuditRecord.load(path)
    assert record.groups[0] == AuditGroup(**OLD_AUDIT["groups"][0])
    assert record.dumps() == path.read_text()


def test_a_run_folder_from_before_is_reported(tmp_path: Path) -> None:
    twin = {**OLD_RESULT, "id": OLD_RESULT["counterpart"], "counterpart": OLD_RESULT["id"],
            "answer": "B", "prediction": "B", "correct": True, "negative": False}
    _write(tmp_path / "run" / "run.json", _old_run(OLD_RUN))
    _write(tmp_path / "run" / "results.jsonl",
           "".join(_old_result(r) + "\n" for r in (OLD_RESULT, twin)))
    run = load_run(tmp_path / "run")
    assert (run.model, run.backend, run.benchmark, run.split) == (
        "random", "random", "tpru-dataset", "test")
    assert [r.correct for r in run.results] == [False, True]


def test_a_small_hand_written_build_json_still_opens(tmp_path: Path) -> None:
    _write(tmp_path / "ds" / "build.json", json.dumps({"splits": ["test"], "seed": 1}))
    info = Dataset.open(tmp_path / "ds").info
    assert (info.splits, info.seed, info.content_hash, dict(info.config)) == (
        ("test",), 1, None, {})
    assert info.SCHEMA_VERSION == SCHEMA_VERSION  # a dataset's one version


def test_run_json_names_written_by_other_tools_are_read() -> None:
    record = RunRecord.from_dict({"model_name": "gpt-4o", "spec": "openai:gpt-4o",
                                  "benchmark": {"name": "muirbench", "source": "hub"}})
    assert (record.model, record.backend, record.benchmark) == (
        "gpt-4o", "openai:gpt-4o", "muirbench")


def test_unknown_keys_are_ignored() -> None:
    line = ResultLine.from_dict({**OLD_RESULT, "schema_version": 1, "latency_s": 0.3})
    assert line == ResultLine.from_dict(OLD_RESULT)
    assert "latency_s" not in line.to_dict()
    assert RunRecord.from_dict({**OLD_RUN, "host": "gpu-1"}) == RunRecord.from_dict(OLD_RUN)
    assert BuildRecord.from_dict({**OLD_BUILD, "extra": 1}) == BuildRecord.from_dict(OLD_BUILD)
    assert AuditRecord.from_dict({**OLD_AUDIT, "x": 1}) == AuditRecord.from_dict(OLD_AUDIT)


# ------------------------------------------------------------------ versions and errors


@pytest.mark.parametrize(("kind", "name", "data", "what"), [
    (RunRecord, "run.json", OLD_RUN, "run.json"),
    (BuildRecord, "build.json", OLD_BUILD, "build.json"),
    (AuditRecord, "audit.json", OLD_AUDIT, "audit.json"),
])
def test_a_file_from_a_newer_tpru_is_refused_in_one_line_naming_it(
        tmp_path: Path, kind: Any, name: str, data: dict[str, Any], what: str) -> None:
    path = _write(tmp_path / name, json.dumps({**data, "schema_version": 2}))
    with pytest.raises(SchemaVersionError) as caught:
        kind.load(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message == (f"{path}: {what} schema_version 2 is newer than this tpru reads "
                       f"(version {kind.SCHEMA_VERSION}); upgrade tpru to read it")


def test_a_results_line_from_a_newer_tpru_is_refused_naming_file_and_line(
        tmp_path: Path) -> None:
    _write(tmp_path / "run" / "run.json", _old_run(OLD_RUN))
    results = _write(tmp_path / "run" / "results.jsonl",
                     _old_result(OLD_RESULT) + "\n"
                     + _old_result({**OLD_RESULT, "id": "b", "schema_version": 7}) + "\n")
    where = re.escape(f"{results}, line 2: ")
    with pytest.raises(SchemaVersionError, match=f"^{where}results line schema_version 7 is "
                                                 "newer"):
        load_run(tmp_path / "run")
    before = results.read_bytes()
    # A resume repairs results.jsonl by dropping unreadable lines: never a newer one.
    with pytest.raises(SchemaVersionError, match=f"^{where}"):
        read_results(results)
    assert results.read_bytes() == before


def test_a_build_json_from_a_newer_tpru_stops_the_dataset_being_read(tmp_path: Path) -> None:
    _write(tmp_path / "ds" / "build.json", json.dumps({**OLD_BUILD, "schema_version": 2}))
    dataset = Dataset.open(tmp_path / "ds")
    with pytest.raises(InputError, match="build.json: build.json schema_version 2 is newer"):
        dataset.splits  # noqa: B018 - the property reads build.json


@pytest.mark.parametrize(("data", "message"), [
    ({"id": "a", "answer": "A"}, "field 'correct' is missing"),
    ({"id": "a", "answer": "A", "correct": "yes"}, "field 'correct': expected bool, got str"),
    ({"id": True, "answer": "A", "correct": True}, "field 'id': expected str or int, got bool"),
    ({"id": "a", "answer": "A", "correct": True, "images": [1]},
     "field 'images': expected a list of text"),
    ({"id": "a", "answer": "A", "correct": True, "schema_version": 0},
     "field 'schema_version': 0 is not a version"),
    ({"id": "a", "answer": "A", "correct": True, "schema_version": "2"},
     "field 'schema_version': expected int, got str"),
    (["a"], "expected a JSON object, got list"),
])
def test_a_bad_result_line_names_where_and_the_field(data: Any, message: str) -> None:
    with pytest.raises(InputError, match=f"^results.jsonl, line 4: {message}"):
        ResultLine.from_dict(data, "results.jsonl, line 4")


def test_bad_files_name_the_file(tmp_path: Path) -> None:
    broken = _write(tmp_path / "run.json", "{")
    with pytest.raises(InputError, match=f"^{re.escape(str(broken))}: not valid JSON"):
        RunRecord.load(broken)
    fingerprint = copy.deepcopy(OLD_RUN)
    fingerprint["benchmark_fingerprint"] = {"items": "2"}
    with pytest.raises(InputError, match="field 'benchmark_fingerprint': expected "):
        RunRecord.from_dict(fingerprint, "run.json")
    audit = {**OLD_AUDIT, "groups": [{**OLD_AUDIT["groups"][0], "n": 2.5}]}
    with pytest.raises(InputError, match=r"^audit.json: groups\[0\]: field 'n': expected int"):
        AuditRecord.from_dict(audit, "audit.json")
    with pytest.raises(InputError, match="^audit.json: field 'passed' is missing"):
        AuditRecord.from_dict({k: v for k, v in OLD_AUDIT.items() if k != "passed"},
                              "audit.json")
    with pytest.raises(InputError, match="no-such.json: cannot be read"):
        BuildRecord.load(tmp_path / "no-such.json")
