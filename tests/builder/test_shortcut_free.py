"""The issue's bar, on a build of 160 episodes: no probe above chance, provenance alike."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tpru.builder.config import BuildConfig
from tpru.builder.pipeline import build
from tpru.config import load
from tpru.dataset import Dataset
from tpru.schema import NONE_OPTION
from tpru.sources.synthetic import write_synthetic_episodes


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("large")
    write_synthetic_episodes(root / "episodes", episodes=40, frames=8, seed=11, size=(96, 72))
    config = load(BuildConfig, {"sources": [f"frames:{root / 'episodes'}"],
                                "out": str(root / "data"), "seed": 5,
                                "tasks": {"windows_per_episode": 2},
                                "split": {"ratios": {"train": 0.8, "test": 0.2}}})
    return build(config, show_progress=False).path


def test_every_probe_is_within_its_interval_of_chance(large: Path) -> None:
    info = json.loads((large / "build.json").read_text())
    assert info["counts"]["episodes_kept"] >= 150
    probes = info["probes"]
    assert probes["leaks"] == []
    for task, report in probes["tasks"].items():
        assert report["n"] >= 100, task
        for name, result in report["probes"].items():
            assert result["within"], (task, name, result)
        if task != "ordering":
            assert report["own_episode_tv"] <= 0.15, (task, report)


def test_positives_and_negatives_alike_in_own_and_cross_episode_candidates(large: Path) -> None:
    counts: dict[tuple[str, bool], Counter[tuple[int, int]]] = {}
    for sample in Dataset.open(large).samples():
        candidates = sample.meta.get("candidates")
        if not candidates:
            continue
        own = sum(1 for c in candidates if c and c["episode"] == sample.episode_id)
        cross = sum(1 for c in candidates if c and c["episode"] != sample.episode_id)
        counts.setdefault((sample.task, sample.negative), Counter())[(own, cross)] += 1
    for task in ("next_frame", "prev_frame"):
        pos, neg = counts[(task, False)], counts[(task, True)]
        npos, nneg = sum(pos.values()), sum(neg.values())
        tv = 0.5 * sum(abs(pos[k] / npos - neg[k] / nneg) for k in set(pos) | set(neg))
        assert tv <= 0.15, (task, pos, neg)


def test_every_scenario_is_in_every_split_and_twins_are_linked(large: Path) -> None:
    dataset = Dataset.open(large)
    by_id = {s.id: s for s in dataset.samples()}
    for split in ("train", "test"):
        assert {s.scenario for s in dataset.samples(split)} == {"robot", "lego", "gui", "nav"}
    twins = [s for s in dataset.samples("test") if "twin" in s.meta]
    assert twins and not any("twin" in s.meta for s in dataset.samples("train"))
    for sample in twins:
        other = by_id[sample.meta["twin"]]
        assert other.meta["twin"] == sample.id and other.negative != sample.negative
        assert other.task == sample.task and other.meta["window"] == sample.meta["window"]
        negative, positive = (sample, other) if sample.negative else (other, sample)
        assert positive.options is not None and negative.options is not None
        assert positive.answer != chr(65 + positive.options.index(NONE_OPTION))
        if sample.task != "ordering":
            # The same candidates, the truth in place of the stand-in.
            assert len(set(positive.option_images) & set(negative.option_images)) == \
                len(positive.option_images) - (negative.meta["negative_kind"] == "missing")
