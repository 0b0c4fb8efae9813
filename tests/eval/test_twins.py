"""Twins: a negative sample and its positive twin, linked by ``meta["twin"]``, scored as a
pair (right only when both are), from the dataset through the results to the report.

The dataset is tests/helpers.py's, with a positive twin added to each of the
two negatives of its test split (the same window, the gold an image instead
of the None option); ``prev-1`` has no twin.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest
from report_fixtures import record, run_info, write_run

from helpers import make_dataset
from tpru.cli import main
from tpru.dataset import Dataset
from tpru.eval.benchmarks import load_benchmark
from tpru.eval.report import load_run, summarise
from tpru.eval.runner import RESULTS_FILE
from tpru.eval.twins import PAIRS_GROUP
from tpru.schema import write_jsonl

TWINS = {"next-neg-mismatch": "next-pos-twin", "ord-neg-mismatch": "ord-pos-twin"}
"""Each negative of the test split and the id of the positive twin added for it."""


def add_twins(root: Path) -> Path:
    """Give each negative of `root`'s test split a positive twin, linked both ways."""
    dataset = Dataset.open(root)
    samples = []
    for sample in dataset.samples("test"):
        twin_id = TWINS.get(sample.id)
        if twin_id is None:
            samples.append(sample)
            continue
        samples.append(dataclasses.replace(sample, meta={**sample.meta, "twin": twin_id}))
        samples.append(dataclasses.replace(
            sample, id=twin_id, answer="A", negative=False,
            meta={"split": "test", "twin": sample.id}))
    write_jsonl(dataset.split_path("test"), samples)
    return root


@pytest.fixture(scope="module")
def twin_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return add_twins(make_dataset(tmp_path_factory.mktemp("twins") / "ds"))


def test_the_dataset_links_twins_both_ways(twin_dataset: Path) -> None:
    samples = {s.id: s for s in Dataset.open(twin_dataset).samples("test")}
    for negative, positive in TWINS.items():
        assert samples[negative].negative and not samples[positive].negative
        assert samples[negative].meta["twin"] == positive
        assert samples[positive].meta["twin"] == negative
        assert samples[negative].task == samples[positive].task


def test_items_carry_the_twin_only_where_there_is_one(twin_dataset: Path,
                                                      tmp_path: Path) -> None:
    items = {i.id: i for i in load_benchmark(twin_dataset, cache_dir=tmp_path).items()}
    links = {**TWINS, **{positive: negative for negative, positive in TWINS.items()}}
    assert {i: item.counterpart for i, item in items.items()} == {**links, "prev-1": None}
    untwinned = make_dataset(tmp_path / "plain")
    plain = load_benchmark(untwinned, cache_dir=tmp_path, split="all").items()
    assert all(item.counterpart is None for item in plain)


def test_pair_accuracy_by_hand(tmp_path: Path) -> None:
    """Two pairs linked in one direction only, one both right; one item whose twin is not
    in the run (left out of the pairs, counted as unpaired)."""
    lines = [
        record("n+", correct=True, task="next_frame", negative=False, counterpart="n-"),
        record("n-", correct=False, task="next_frame", negative=True, answer="C"),
        record("o-", correct=True, task="ordering", negative=True, answer="C",
               counterpart="o+"),
        record("o+", correct=True, task="ordering", negative=False),
        record("p-", correct=True, task="prev_frame", negative=True, answer="C",
               counterpart="gone"),
    ]
    run = load_run(write_run(tmp_path / "run", run_info("m", "random", "tpru-dataset",
                                                         split="test"), lines))
    report = summarise([run], bootstrap=0).runs[0]
    pairs = report.groups["pairs"][PAIRS_GROUP]
    assert (pairs.n, pairs.correct, pairs.accuracy) == (2, 1, 50.0)
    by_task = {task: (c.correct, c.n) for task, c in report.groups["pairs_by_task"].items()}
    assert by_task == {"next_frame": (0, 1), "ordering": (1, 1)}
    assert report.unpaired == 1


def test_eval_and_report_show_pair_accuracy_in_every_format(
        twin_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["eval", "-q", "--model", "random", "--seed", "5", "--bench",
                 str(twin_dataset), "--out", str(run), "--cache-dir", str(tmp_path / "c")]) == 0
    lines = {line["id"]: line for line in map(
        json.loads, (run / RESULTS_FILE).read_text(encoding="utf-8").splitlines())}
    links = {**TWINS, **{positive: negative for negative, positive in TWINS.items()}}
    assert {i: line["counterpart"] for i, line in lines.items()} == {**links, "prev-1": None}
    both = {negative: lines[negative]["correct"] and lines[positive]["correct"]
            for negative, positive in TWINS.items()}
    # seed 5: one pair both right; the other has one twin right, which a pair does not count
    assert sorted(both.values()) == [False, True]
    assert all(lines[n]["correct"] or lines[p]["correct"] for n, p in TWINS.items())
    tasks = {"next-neg-mismatch": "next_frame", "ord-neg-mismatch": "ordering"}
    capsys.readouterr()

    assert main(["report", str(run), "--format", "json", "--bootstrap", "0"]) == 0
    report = json.loads(capsys.readouterr().out)["runs"][0]
    groups, label = report["groups"], report["label"]
    assert groups["pairs"][PAIRS_GROUP]["n"] == 2
    assert groups["pairs"][PAIRS_GROUP]["correct"] == sum(both.values())
    assert {task: (cell["correct"], cell["n"]) for task, cell in
            groups["pairs_by_task"].items()} == {tasks[k]: (int(v), 1) for k, v in both.items()}

    assert main(["report", str(run), "--format", "csv", "--bootstrap", "0"]) == 0
    rows = [r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))
            if r["breakdown"] in ("pairs", "pairs_by_task")]
    assert [(r["breakdown"], r["group"], r["n"]) for r in rows] == [
        ("pairs", PAIRS_GROUP, "2"), ("pairs_by_task", "next_frame", "1"),
        ("pairs_by_task", "ordering", "1")]

    html = tmp_path / "report.html"
    assert main(["report", str(run), "--bootstrap", "0", "--html", str(html)]) == 0
    markdown = capsys.readouterr().out
    assert "## Twin pairs where both items are right\n" in markdown
    assert "## Twin pairs where both items are right, by task\n" in markdown
    assert f"| {label} | {PAIRS_GROUP} | 2 | 1 | 50.00 |" in markdown
    page = html.read_text(encoding="utf-8")
    assert 'data-table="pairs"' in page and 'data-table="pairs_by_task"' in page
    wrong = [i for i, line in lines.items() if not line["correct"] and i in links]
    assert wrong and all(f"<span>twin: {links[i]}</span>" in page for i in wrong)
