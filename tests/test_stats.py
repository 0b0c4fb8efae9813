"""Counts of `tpru.stats` on the hand-built fixture dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from helpers import EXPECTED, make_dataset
from tpru.dataset import Dataset
from tpru.schema import Sample, write_jsonl
from tpru.stats import compute_stats, render_stats


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return Dataset.open(make_dataset(tmp_path / "ds"))


def test_totals_match_the_fixture(dataset: Dataset) -> None:
    stats = compute_stats(dataset)
    for key, expected in EXPECTED.items():
        assert stats[key] == expected, key
    assert list(stats["splits"]) == ["train", "test"]  # build order, not sorted
    assert stats["schema_version"] == 1
    assert stats["seed"] == 0


def test_answer_letters_count_multiple_choice_only(dataset: Dataset) -> None:
    stats = compute_stats(dataset)
    # The letter-form ordering sample ("CABD") has no options and is not counted.
    assert stats["answer_letters"] == {
        "ordering": {"B": 1, "C": 1},
        "next_frame": {"A": 1, "D": 1},
        "prev_frame": {"B": 1, "C": 1},
    }


def test_images_per_sample(dataset: Dataset) -> None:
    stats = compute_stats(dataset)
    assert stats["images_per_sample"] == {"min": 4, "mean": round(36 / 7, 3), "max": 6}
    assert stats["by_split"]["train"]["images_per_sample"] == {"min": 4, "mean": 5.0, "max": 6}


def test_counts_per_split(dataset: Dataset) -> None:
    by_split = compute_stats(dataset)["by_split"]
    assert set(by_split) == {"train", "test"}
    train, test = by_split["train"], by_split["test"]
    assert train["samples"] == 4 and test["samples"] == 3
    assert train["tasks"] == {"ordering": 2, "next_frame": 1, "prev_frame": 1}
    assert test["tasks"] == {"ordering": 1, "next_frame": 1, "prev_frame": 1}
    assert train["scenarios"] == {"gui": 1, "lego": 1, "robot": 2}
    assert train["negative"] == {"positive": 3, "negative": 1}
    assert test["negative"] == {"positive": 1, "negative": 2}
    assert train["negative_kinds"] == {"missing": 1}
    assert test["negative_kinds"] == {"mismatch": 2}
    assert train["ordering_forms"] == {"options": 1, "letters": 1}
    assert test["ordering_forms"] == {"options": 1, "letters": 0}
    assert test["answer_letters"] == {"ordering": {"B": 1}, "next_frame": {"D": 1},
                                      "prev_frame": {"C": 1}}


def test_negative_without_kind_counts_as_unknown(dataset: Dataset) -> None:
    path = dataset.split_path("test")
    sample = Sample(id="neg-nokind", task="next_frame", scenario="nav", episode_id="nav-1",
                    question="<image> <image> <image> next?",
                    options=("None of the choices provided", "<image>"), answer="A",
                    images=("a.jpg", "b.jpg", "c.jpg", "d.jpg"), negative=True)
    write_jsonl(path, [sample])
    stats = compute_stats(dataset)
    assert stats["by_split"]["test"]["negative_kinds"] == {"unknown": 1}
    assert stats["scenarios"]["nav"] == 1


def test_empty_split(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds")
    (root / "test.jsonl").write_text("", encoding="utf-8")
    stats = compute_stats(Dataset.open(root))
    assert stats["splits"] == {"train": 4, "test": 0}
    assert stats["by_split"]["test"]["images_per_sample"] == {"min": None, "mean": None,
                                                               "max": None}
    render_stats(stats)  # an empty split renders without error


def test_stats_are_json(dataset: Dataset) -> None:
    stats = compute_stats(dataset)
    assert json.loads(json.dumps(stats)) == stats


def test_render_shows_the_counts(dataset: Dataset) -> None:
    console = Console(record=True, width=140, color_system=None)
    console.print(render_stats(compute_stats(dataset)))
    text = console.export_text()
    for expected in ("By task", "next_frame", "By scenario", "robot", "mismatch", "missing",
                     "letters", "Gold answer letter", "1 (50%)", "5.14"):
        assert expected in text, expected
