"""What ``--resume`` checks before it keeps earlier results: that the benchmark is the
same by content (not by path spelling), and that every kept line is a result
``tpru report`` can read."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from bench_files import write_muirbench, write_tpru_test

from tpru.diagnostics import InputError
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.config import EvalConfig
from tpru.eval.items import items_fingerprint
from tpru.eval.report import load_run
from tpru.eval.runner import RESULTS_FILE, RUN_FILE, RunSummary, run_eval
from tpru.models import open_backend


def _run(spec: str, cache_dir: Path, out: Path, *, resume: bool = False,
         **settings: Any) -> RunSummary:
    config = EvalConfig(**{"batch_size": 2, "max_new_tokens": 16, **settings})
    bench = load_benchmark(spec, cache_dir=cache_dir)
    return run_eval(open_backend("random", seed=0), bench, out, config, resume=resume,
                    show_progress=False)


def _info(out: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    return info


def _edit_jsonl(path: Path, index: int, **changes: Any) -> None:
    """Change fields of the row at `index` of a JSONL benchmark, keeping its id."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[index].update(changes)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# ---------------------------------------------------------- the benchmark's content


def test_resume_refuses_a_benchmark_whose_questions_changed(tmp_path: Path,
                                                            cache_dir: Path) -> None:
    """Same ids, another answer: the kept results were scored against the old gold."""
    bench = write_tpru_test(tmp_path / "bench" / "test.jsonl")
    spec, out = f"tpru-test:{bench}", tmp_path / "run"
    _run(spec, cache_dir, out, limit=2)
    before = (out / RESULTS_FILE).read_bytes()
    _edit_jsonl(bench, 0, answer="B")
    with pytest.raises(InputError, match="cannot resume: the benchmark changed since the run "
                                         "began .*first 2 items are not the same.*new --out"):
        _run(spec, cache_dir, out, resume=True)
    assert (out / RESULTS_FILE).read_bytes() == before


def test_resume_refuses_a_benchmark_with_other_items(tmp_path: Path, cache_dir: Path) -> None:
    """The red team's case: the dataset rebuilt with other ids under the same path."""
    bench = write_muirbench(tmp_path / "muir.parquet", pairs=3, bad=False)
    spec, out = f"muirbench:{bench}", tmp_path / "run"
    _run(spec, cache_dir, out)
    write_muirbench(bench, pairs=2, bad=False)  # fewer items
    with pytest.raises(InputError, match="changed since the run began \\(it has 4 items, "
                                         "the run covered 6"):
        _run(spec, cache_dir, out, resume=True)


def test_resume_accepts_the_same_benchmark_under_another_spelling(
        tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = write_muirbench(tmp_path / "data" / "muir.parquet", pairs=3, bad=False)
    out = tmp_path / "run"
    _run(f"muirbench:{bench}", cache_dir, out, limit=2)
    assert _info(out)["benchmark_source"] == str(bench.resolve())
    monkeypatch.chdir(tmp_path / "data")
    summary = _run("muirbench:muir.parquet", cache_dir, out, resume=True, limit=4)
    assert (summary.kept, summary.generated) == (2, 2)
    (tmp_path / "link").symlink_to(tmp_path / "data")
    summary = _run(f"muirbench:{tmp_path / 'link' / '..' / 'link' / 'muir.parquet'}", cache_dir,
                   out, resume=True)
    assert (summary.kept, summary.generated) == (4, 2)
    assert _info(out)["benchmark_source"] == str(bench.resolve())
    # moved elsewhere, content unchanged: still the same benchmark
    moved = tmp_path / "elsewhere.parquet"
    os.replace(bench, moved)
    summary = _run(f"muirbench:{moved}", cache_dir, out, resume=True)
    assert (summary.kept, summary.generated) == (6, 0)
    assert _info(out)["benchmark_source"] == str(moved.resolve())


def test_a_shorter_limit_still_checks_every_kept_result(tmp_path: Path, cache_dir: Path) -> None:
    """Results kept from a longer limit are checked when the limit shrinks and grows again."""
    bench = write_tpru_test(tmp_path / "bench" / "test.jsonl")
    spec, out = f"tpru-test:{bench}", tmp_path / "run"
    _run(spec, cache_dir, out, limit=3)
    summary = _run(spec, cache_dir, out, resume=True, limit=1)
    assert (summary.items, summary.kept, summary.generated) == (1, 1, 0)
    assert _info(out)["benchmark_fingerprint"]["items"] == 3
    _edit_jsonl(bench, 2, answer="<answer>DCBA</answer>")  # the third item, past limit 1
    with pytest.raises(InputError, match="changed since the run began"):
        _run(spec, cache_dir, out, resume=True, limit=1)


def test_runs_from_before_fingerprints_resume_from_the_same_place(
        tmp_path: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    bench = write_muirbench(tmp_path / "muir.parquet", pairs=2, bad=False)
    out = tmp_path / "run"
    _run(f"muirbench:{bench}", cache_dir, out, limit=2)
    info = _info(out)
    del info["benchmark_fingerprint"]
    (out / RUN_FILE).write_text(json.dumps(info), encoding="utf-8")
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(bench.read_bytes())
    with pytest.raises(InputError, match="from an older tpru, has no fingerprint.*resume from "
                                         "the folder the run was started in"):
        _run(f"muirbench:{copy}", cache_dir, out, resume=True)
    with caplog.at_level(logging.WARNING, logger="tpru.eval"):
        summary = _run(f"muirbench:{bench}", cache_dir, out, resume=True)
    assert (summary.kept, summary.generated) == (2, 2)
    assert "has no benchmark fingerprint" in caplog.text
    assert _info(out)["benchmark_fingerprint"]["items"] == 4  # recorded from now on


def test_fingerprint_sees_images_by_name_and_size(tmp_path: Path, cache_dir: Path) -> None:
    bench = write_tpru_test(tmp_path / "bench" / "test.jsonl")  # images as relative paths
    items = list(load_benchmark(f"tpru-test:{bench}", cache_dir=cache_dir).items())
    again = list(load_benchmark(f"tpru-test:{bench}", cache_dir=cache_dir).items())
    whole, rest = items_fingerprint(items), items_fingerprint(items[1:])
    assert items_fingerprint(again) == whole and rest != whole
    image = Path(items[0].images[0])  # a file the benchmark names, kept in place
    image.write_bytes(image.read_bytes() + b"\0")
    assert items_fingerprint(items) != whole
    assert items_fingerprint(items[1:]) == rest


# ------------------------------------------------------------------ the kept lines


def test_resume_drops_a_line_that_is_not_a_result_and_reruns_its_item(
        tmp_path: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    bench = write_muirbench(tmp_path / "muir.parquet", pairs=3, bad=False)
    spec, out, whole = f"muirbench:{bench}", tmp_path / "run", tmp_path / "whole"
    _run(spec, cache_dir, out)
    _run(spec, cache_dir, whole)
    lines = (out / RESULTS_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = json.dumps({"id": "test_2"}) + "\n"  # valid JSON, not a result
    lines[4] = json.dumps({**json.loads(lines[4]), "correct": "yes"}) + "\n"  # wrong type
    (out / RESULTS_FILE).write_text("".join(lines), encoding="utf-8")
    with pytest.raises(InputError, match="field 'correct' is missing"):
        load_run(out)  # what the report says of such a file
    with caplog.at_level(logging.WARNING, logger="tpru.eval"):
        summary = _run(spec, cache_dir, out, resume=True)
    assert (summary.kept, summary.generated, summary.items) == (4, 2, 6)
    assert "2 lines are not a readable result and dropped" in caplog.text
    assert "line 3: field 'correct' is missing" in caplog.text
    run = load_run(out)  # the report reads the finished run
    assert len(run.results) == 6
    expected = {r.id: r.correct for r in load_run(whole).results}
    assert {r.id: r.correct for r in run.results} == expected


# ---------------------------------------------------------- checked before the model loads


def test_a_resume_that_does_not_match_fails_before_the_model_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12, 10: ``tpru eval --resume`` loaded the model (minutes for a 7B) and only
    then compared the run's settings. A model that cannot load shows the order: a resume
    that does not match must fail with the settings message, never the loading error."""
    from helpers import make_dataset
    from tpru.cli import main

    dataset, out = make_dataset(tmp_path / "ds"), tmp_path / "run"
    base = ["eval", "-q", "--bench", str(dataset), "--split", "test", "--out", str(out)]
    assert main([*base, "--model", "random"]) == 0
    results = (out / RESULTS_FILE).read_bytes()
    missing = f"hf:{tmp_path / 'no-such-model'}"
    opened: list[str] = []

    def refuse_to_load(spec: str, **options: Any) -> Any:
        opened.append(spec)
        raise AssertionError(f"the model {spec} was loaded before the checks")

    monkeypatch.setattr("tpru.models.open_backend", refuse_to_load)
    for argv, message in [
            (["--model", missing, "--resume"],
             f"cannot resume: the run used backend 'random' (now '{missing}')"),
            (["--model", missing, "--resume", "--seed", "3"], "seed 0 (now 3)"),
            (["--model", "random", "--resume", "--max-new-tokens", "7"],
             "max_new_tokens 1024 (now 7)"),
            (["--model", "random", "--resume", "--split", "train"],
             "split 'test' (now 'train'); pass --split test to continue it"),
            (["--model", missing], "already holds a run; continue it with --resume")]:
        assert main([*base, *argv]) == 1, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    first = json.loads((dataset / "test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    _edit_jsonl(dataset / "test.jsonl", 0, question=first["question"] + " Really?")
    assert main([*base, "--model", "random", "--resume"]) == 1
    assert "the benchmark changed since the run began" in capsys.readouterr().err
    assert opened == [] and (out / RESULTS_FILE).read_bytes() == results
