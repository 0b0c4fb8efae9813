"""Chance and always-None levels, drawn across the overall bars; radars keep every group.

The levels are worked out by hand from results lines written in the runner's
format (report_fixtures), old lines that cannot say included.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from matplotlib.collections import LineCollection
from report_fixtures import IMG, NONE, record, run_info, write_run

from tpru.eval.audit import chance as audit_chance
from tpru.eval.baselines import baselines, chance, gold_is_none
from tpru.eval.items import Item
from tpru.eval.plots import overall_chart, radar_chart, radar_groups, radars
from tpru.eval.report import Run, Summary, load_run, summarise


def test_chance_and_gold_is_none_per_line() -> None:
    assert chance(["x", "y", NONE], "C", "Which? <image>") == pytest.approx(1 / 3)
    assert chance(None, "CABD", f"Order: {IMG} {IMG} {IMG} {IMG}") == pytest.approx(1 / 24)
    assert chance(["1", "2", "3", "4"], "BDAC", "Sort the steps.") == pytest.approx(1 / 24)
    assert chance(None, "B", f"Which? {IMG}") is None  # a line without its options
    assert gold_is_none(["x", "y", "None of the choices provided."], "C") is True
    assert gold_is_none([IMG, IMG, NONE], "A") is False
    assert gold_is_none(None, "CABD") is False and gold_is_none(None, "B") is None


def test_the_audit_uses_the_same_chance() -> None:
    item = Item(id="q", benchmark="demo", question=f"{IMG} {IMG} {IMG}", options=None,
                answer="BCA", images=("a", "b", "c"), task="ordering")
    assert audit_chance(item) == pytest.approx(1 / 6)


def _run(folder: Path, lines: list[dict[str, object]], model: str = "random") -> Run:
    return load_run(write_run(folder, run_info(model, "random", "tpru-dataset", split="test"),
                              lines))


def _levels_run(folder: Path) -> Run:
    """q1 gold None among 3 (chance 1/3), q2 gold x among 4 (1/4), q3 a letter order of 4
    images (1/24), q4 an old line without options: left out of both levels."""
    return _run(folder, [
        record("q1", correct=True, task="next_frame", answer="C", options=["x", "y", NONE]),
        record("q2", correct=False, task="next_frame", answer="A",
               options=["x", "y", "z", NONE], prediction="D"),
        record("q3", correct=False, task="ordering", answer="CABD", options=None,
               question=f"Order: {IMG} {IMG} {IMG} {IMG}", prediction="ABCD"),
        record("q4", correct=True, task="ordering", answer="B", options=None)])


def test_run_levels_leave_out_lines_that_cannot_say(tmp_path: Path) -> None:
    run = _levels_run(tmp_path / "run")
    levels = baselines(run.results)
    assert levels.chance == pytest.approx(100 * (1 / 3 + 1 / 4 + 1 / 24) / 3)
    assert levels.always_none == pytest.approx(100 / 3)
    report = summarise([run], bootstrap=0).runs[0]
    assert (report.chance, report.always_none) == (levels.chance, levels.always_none)
    old = _run(tmp_path / "old", [record("q4", correct=True, task="t", answer="B",
                                         options=None)])
    assert baselines(old.results) == baselines([])  # nothing to say: no levels, no lines
    assert baselines(old.results).chance is None
    no_none = _run(tmp_path / "lego", [record("q", correct=True, task="t", options=["a", "b"])])
    assert baselines(no_none.results).always_none is None  # no item offers None
    assert baselines(no_none.results).chance == pytest.approx(50.0)


def _reference_lines(summary: Summary) -> dict[str, list[float]]:
    axes = overall_chart(summary).axes[0]
    levels: dict[str, list[float]] = {}
    for collection in axes.collections:
        if isinstance(collection, LineCollection):
            for segment in collection.get_segments():
                if len(segment) == 2 and segment[0][1] == segment[1][1]:
                    levels.setdefault(collection.get_label(), []).append(float(segment[0][1]))
    return levels


def test_bars_draw_chance_and_always_none(tmp_path: Path) -> None:
    levels_run = _levels_run(tmp_path / "a")
    old = _run(tmp_path / "b", [record("q4", correct=True, task="t", answer="B", options=None)],
               model="old")
    summary = summarise([levels_run, old], bootstrap=0)
    lines = _reference_lines(summary)
    first = summary.runs[0]
    # one line each, across the first bar only: the old run's lines cannot say
    assert lines.keys() == {"chance", "always None"}
    assert lines["chance"] == [pytest.approx(first.chance)]
    assert lines["always None"] == [pytest.approx(first.always_none)]
    legend = [t.get_text() for t in overall_chart(summary).axes[0].get_legend().get_texts()]
    assert legend == ["chance", "always None"]
    again = summarise([levels_run, old, _levels_run(tmp_path / "c")], bootstrap=0)
    assert len(_reference_lines(again)["_nolegend_"]) == 2  # the third bar's, once in the legend
    legend = [t.get_text() for t in overall_chart(again).axes[0].get_legend().get_texts()]
    assert legend == ["chance", "always None"]


def _groups_run(folder: Path, tasks: list[str], model: str) -> Run:
    return _run(folder, [record(f"{task}-{k}", correct=k == 0, task=task)
                         for task in tasks for k in range(2)], model=model)


def test_radar_keeps_every_group_and_leaves_a_gap(tmp_path: Path) -> None:
    full = _groups_run(tmp_path / "full", ["a", "b", "c", "d"], "full")
    part = _groups_run(tmp_path / "part", ["a", "b", "c"], "part")
    summary = summarise([full, part], bootstrap=0)
    assert radar_groups(summary, "task") == ["a", "b", "c", "d"]
    axes = radar_chart(summary, "task").axes[0]
    lines = {line.get_label(): list(line.get_ydata()) for line in axes.get_lines()}
    assert lines["full"] == [50.0] * 5  # closed: the first value again at the end
    assert lines["part"][:3] == [50.0] * 3 and math.isnan(lines["part"][3])
    assert len(axes.patches) == 1  # only the run with every group is filled
    assert axes.get_xticks().size == 4


def test_a_radar_is_drawn_where_runs_share_few_groups(tmp_path: Path) -> None:
    left = _groups_run(tmp_path / "left", ["a", "b", "c"], "left")
    right = _groups_run(tmp_path / "right", ["c", "d", "e"], "right")
    summary = summarise([left, right], bootstrap=0)
    assert radars(summary) == [("tpru-dataset", "task")]
    assert radar_groups(summary, "task") == ["a", "b", "c", "d", "e"]
