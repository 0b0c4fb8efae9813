"""Accuracy by number of frames and by difficulty, on runs made by ``tpru eval``.

A mixed-length dataset (3, 5, 8 and 16 frames; its test split as built before
difficulty scores) and MuirBench (no frames or scores recorded: lengths are
the questions' images) are evaluated with the random baseline, then reported
as JSON, markdown, HTML and charts through the command line.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from length_fixtures import SCORES, make_mixed_dataset
from tpru.cli import main
from tpru.curriculum import difficulty_bucket
from tpru.records import ResultLine
from tpru.schema import Sample, read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, muirbench_file: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("length-runs")
    dataset = make_mixed_dataset(root / "dataset")
    test = [replace(s, meta={k: v for k, v in s.meta.items() if k != "difficulty"})
            for s in read_jsonl(dataset / "test.jsonl", Sample)]
    write_jsonl(dataset / "test.jsonl", test)  # the test split has no scores
    out = {"dataset": root / "tpru-run", "muirbench": root / "muir-run"}
    assert main(["eval", "-q", "--model", "random", "--seed", "3", "--bench",
                 f"dataset:{dataset}", "--split", "all", "--out", str(out["dataset"])]) == 0
    assert main(["eval", "-q", "--model", "random", "--seed", "3", "--bench",
                 f"muirbench:{muirbench_file}", "--out", str(out["muirbench"]),
                 "--cache-dir", str(root / "cache")]) == 0
    return out


def _results(run: Path) -> list[ResultLine]:
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [ResultLine.from_dict(json.loads(line)) for line in lines]


def _report(runs: dict[str, Path], capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    capsys.readouterr()
    assert main(["report", "-q", str(runs["dataset"]), str(runs["muirbench"]), "--bootstrap",
                 "100", *extra]) == 0
    return capsys.readouterr().out


def _cells(groups: dict[str, Any], breakdown: str) -> dict[str, tuple[int, int]]:
    return {g: (c["n"], c["correct"]) for g, c in groups[breakdown].items()}


def test_results_record_frames_and_difficulty(runs: dict[str, Path]) -> None:
    lines = {r.id: r for r in _results(runs["dataset"])}
    assert lines["next-16"].frames == 16 and lines["next-16"].difficulty == 0.9
    assert lines["prev-8"].frames == 8 and lines["prev-8"].difficulty is None
    raw = (runs["muirbench"] / "results.jsonl").read_text(encoding="utf-8")
    assert '"frames"' not in raw and '"difficulty"' not in raw  # unknown: not written


def test_accuracy_by_frames_and_difficulty(runs: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(_report(runs, capsys, "--format", "json"))
    tpru, muir = (run["groups"] for run in data["runs"])
    results = _results(runs["dataset"])
    right = Counter(str(r.frames) for r in results if r.correct)
    assert _cells(tpru, "frames") == {str(n): (3, right[str(n)]) for n in (3, 5, 8, 16)}
    assert list(tpru["frames"]) == ["3", "5", "8", "16"]  # by number, not as text
    buckets = Counter(difficulty_bucket(SCORES[r.id]) if r.difficulty is not None
                      else "unknown" for r in results)
    assert buckets == {"easy": 2, "medium": 3, "hard": 3, "unknown": 4}
    assert {g: n for g, (n, _) in _cells(tpru, "difficulty").items()} == buckets
    assert list(tpru["difficulty"]) == ["easy", "medium", "hard", "unknown"]
    by_task = _cells(tpru, "frames_by_task")
    assert by_task["next_frame / 16"] == (1, int(next(r.correct for r in results
                                                      if r.id == "next-16")))
    assert sum(n for n, _ in by_task.values()) == 12
    assert _cells(tpru, "difficulty_by_task")["prev_frame / unknown"][0] == 4
    # MuirBench records neither: lengths are the questions' images, and no difficulty
    muir_results = _results(runs["muirbench"])
    lengths = Counter(str(r.question.count("<image>")) for r in muir_results)
    assert {g: n for g, (n, _) in _cells(muir, "frames").items()} == lengths
    assert "difficulty" not in muir and "difficulty_by_task" not in muir


def test_markdown_and_html_carry_the_tables_and_the_chart(
        runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    markdown = _report(runs, capsys, "--html", str(tmp_path / "report.html"),
                       "--plots", str(tmp_path / "plots"))
    assert "## By number of frames, per task" in markdown
    assert "| run | task | frames | n | correct | accuracy | 95% CI | errors |" in markdown
    assert "## By difficulty (easy: score < 1/3, medium: < 2/3, hard: the rest)" in markdown
    assert "| random(seed=3) #1 | prev_frame | unknown | 4 |" in markdown
    assert "| random(seed=3) #1 | 16 | 3 |" in markdown
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    for key in ("frames", "frames_by_task", "difficulty", "difficulty_by_task"):
        assert f'data-table="{key}"' in page
    plots = sorted(p.name for p in (tmp_path / "plots").glob("length-*.png"))
    assert plots == ["length-muirbench.png", "length-tpru-dataset.png"]
    assert 'src="plots/length-tpru-dataset.png" alt="length-tpru-dataset"' in page


def test_length_chart_panels_overall_and_per_task(runs: dict[str, Path]) -> None:
    from tpru.eval.plots import length_benchmarks, length_chart
    from tpru.eval.report import load_run, summarise

    summary = summarise([load_run(runs["dataset"]), load_run(runs["muirbench"])], bootstrap=50)
    assert length_benchmarks(summary) == ["tpru-dataset", "muirbench"]
    figure = length_chart(summary, "tpru-dataset")
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["overall", "next_frame", "ordering", "prev_frame"]
    overall = figure.axes[0].lines[0]
    assert [float(x) for x in overall.get_xdata()] == [3, 5, 8, 16]  # type: ignore[union-attr, arg-type]
    expected = summary.runs[0].groups["frames"]
    assert [float(y) for y in overall.get_ydata()] == pytest.approx(  # type: ignore[union-attr, arg-type]
        [expected[str(n)].accuracy for n in (3, 5, 8, 16)])
