"""Benchmarks as they are released: LEGO-Puzzles' 12 category labels mapped to the paper's
11 tasks, and MuirBench read alike from the hub's parquet and VLMEvalKit's TSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_files import (
    LEGO_LABELS,
    muirbench_rows,
    write_lego_released,
    write_muirbench,
    write_muirbench_tsv,
)
from report_fixtures import record, run_info, write_run

from tpru.cli import main
from tpru.diagnostics import Skips
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.benchmarks.lego_puzzles import paper_task
from tpru.eval.items import Item
from tpru.eval.report import load_run, summarise
from tpru.eval.report_paper import compare_to_paper, load_paper_results
from tpru.eval.runner import RESULTS_FILE, RUN_FILE


def _items(spec: str, cache_dir: Path) -> tuple[list[Item], Skips]:
    skips = Skips()
    return list(load_benchmark(spec, cache_dir=cache_dir).items(skips)), skips


# ------------------------------------------------------------------ LEGO-Puzzles


def test_every_released_lego_label_is_a_paper_task_with_its_ability(
        tmp_path: Path, cache_dir: Path) -> None:
    path = write_lego_released(tmp_path / "LEGO.tsv")
    items, skips = _items(f"lego-puzzles:{path}", cache_dir)
    assert not skips.counts and len(items) == 2 * len(LEGO_LABELS)
    for item in items:
        assert (item.task, item.category) == LEGO_LABELS[item.meta["label"]], item.id
    # rotate_1 and rotate_2 are the paper's one Rotation task: 11 tasks from 12 labels.
    paper = load_paper_results().benchmarks["lego-puzzles"]
    tasks = {item.task for item in items}
    assert len(tasks) == 11 and {paper.column(t) for t in tasks} == set(paper.columns[:-1])


def test_lego_labels_are_read_however_they_are_spelt() -> None:
    assert paper_task("10_rotate_1") == paper_task("Rotation") == paper_task("rotate-2")
    assert paper_task("Rotation_Status") == paper_task("12_rotate_composition")
    assert paper_task("Next-Step") == paper_task("6_Next_step") == ("Next-Step",
                                                                    "single-step reasoning")
    assert paper_task("13_teleport") is None


def test_an_unknown_lego_label_stays_the_task(tmp_path: Path, cache_dir: Path) -> None:
    path = write_lego_released(tmp_path / "LEGO.tsv", per_label=1)
    text = path.read_text(encoding="utf-8").replace("\t4_Height\t", "\t13_Teleport\t")
    path.write_text(text, encoding="utf-8")
    items, _ = _items(f"lego-puzzles:{path}", cache_dir)
    odd = next(item for item in items if item.meta["label"] == "13_Teleport")
    assert (odd.task, odd.category) == ("13_Teleport", None)


def test_report_compares_every_lego_column_of_a_released_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lego_released(tmp_path / "LEGO.tsv")
    run = tmp_path / "run"
    assert main(["eval", "-q", "--model", "random", "--seed", "1", "--bench",
                 f"lego-puzzles:{path}", "--out", str(run),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    assert main(["report", "-q", str(run), "--compare", "paper", "--paper-model", "GPT-4o",
                 "--format", "json"]) == 0
    comparison = json.loads(capsys.readouterr().out)["comparison"]
    rows = {row["group"]: row for row in comparison["rows"]}
    columns = load_paper_results().benchmarks["lego-puzzles"].columns
    assert list(rows) == list(columns) and not comparison["notes"]
    assert all(row["ours"] is not None for row in rows.values())
    assert rows["rotation"]["run_group"] == "Rotation"
    assert main(["report", "-q", str(run), "--compare", "paper", "--paper-model",
                 "GPT-4o"]) == 0
    markdown = capsys.readouterr().out
    compared = markdown[markdown.index("## Compared with the paper"):]
    assert "n/a" not in compared and compared.count("| LEGO-Puzzles | GPT-4o |") == 12


def test_two_groups_on_one_paper_column_are_named_not_compared(tmp_path: Path) -> None:
    lines = [record("a", correct=True, task="Rotation", benchmark="lego-puzzles"),
             record("b", correct=False, task="rotation", benchmark="lego-puzzles"),
             record("c", correct=True, task="Height", benchmark="lego-puzzles")]
    folder = write_run(tmp_path / "r", run_info("gpt-4o", "openai:gpt-4o", "lego-puzzles"),
                       lines)
    comparison = compare_to_paper(summarise([load_run(folder)], bootstrap=0))
    rows = {row.group: row for row in comparison.rows}
    assert rows["rotation"].ours is None and rows["height"].ours is not None
    assert any("Rotation, rotation all match" in note and "'rotation'" in note
               for note in comparison.notes)


# --------------------------------------------------------------------- MuirBench


def _same_items(tmp_path: Path, *, extra_columns: bool) -> tuple[Path, Path]:
    rows = muirbench_rows(4)
    parquet = write_muirbench(tmp_path / "hub" / "test-00000-of-00001.parquet", pairs=4,
                              bad=False)
    tsv = write_muirbench_tsv(tmp_path / "MUIRBench.tsv", rows, extra_columns=extra_columns)
    return parquet, tsv


def test_muirbench_tsv_gives_the_items_of_the_parquet(tmp_path: Path, cache_dir: Path) -> None:
    parquet, tsv = _same_items(tmp_path, extra_columns=True)
    from_hub, hub_skips = _items(f"muirbench:{parquet}", cache_dir)
    from_tsv, tsv_skips = _items(f"muirbench:{tsv}", cache_dir)
    assert not hub_skips.counts and not tsv_skips.counts and len(from_hub) == 8
    assert from_tsv == from_hub  # one-image rows are a bare base64 string in the TSV


def test_muirbench_tsv_without_the_hub_only_columns(tmp_path: Path, cache_dir: Path) -> None:
    parquet, tsv = _same_items(tmp_path, extra_columns=False)
    from_hub, _ = _items(f"muirbench:{parquet}", cache_dir)
    from_tsv, _ = _items(f"muirbench:{tsv}", cache_dir)
    for hub, ours in zip(from_hub, from_tsv, strict=True):
        assert (ours.id, ours.task, ours.question, ours.options, ours.answer, ours.images,
                ours.answerable) == (hub.id, hub.task, hub.question, hub.options, hub.answer,
                                     hub.images, hub.answerable)
        assert (ours.category, ours.scenario, ours.counterpart) == (None, None, None)


@pytest.mark.parametrize("prompt", ["muirbench", "muirbench-authors"])
def test_muirbench_scores_are_identical_in_both_layouts(
        prompt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parquet, tsv = _same_items(tmp_path, extra_columns=True)
    runs = {}
    for name, path in (("hub", parquet), ("tsv", tsv)):
        runs[name] = tmp_path / f"run-{name}"
        assert main(["eval", "-q", "--model", "random", "--seed", "7", "--prompt", prompt,
                     "--bench", f"muirbench:{path}", "--out", str(runs[name]),
                     "--cache-dir", str(tmp_path / "cache")]) == 0
    results = {name: (run / RESULTS_FILE).read_text(encoding="utf-8") for name, run in
               runs.items()}
    assert results["hub"] == results["tsv"] and results["hub"].count("\n") == 8
    info = {name: json.loads((run / RUN_FILE).read_text(encoding="utf-8"))
            for name, run in runs.items()}
    assert info["hub"]["counts"] == info["tsv"]["counts"]
    assert info["hub"]["benchmark_fingerprint"] == info["tsv"]["benchmark_fingerprint"]
    capsys.readouterr()
    reports = []
    for run in runs.values():
        assert main(["report", "-q", str(run), "--format", "json"]) == 0
        report = json.loads(capsys.readouterr().out)["runs"][0]
        reports.append({k: report[k] for k in ("overall", "groups")})
    assert reports[0] == reports[1]
