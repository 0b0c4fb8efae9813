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


# ---------------------------------------------------------------- mixed sequence lengths

LENGTHS = [3, 5, 8, 12, 16]
CANDIDATES = {"ordering": 5, "next_frame": 4, "prev_frame": 4}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160 episodes of 6 to 20 frames, windows of 3 to 16 frames, choices per task."""
    from episode_files import COLOURS, DESCRIPTIONS, SCENARIOS, write_episode

    root = tmp_path_factory.mktemp("mixed")
    for e in range(160):
        description = DESCRIPTIONS[e % len(DESCRIPTIONS)].format(
            c=COLOURS[(e // len(DESCRIPTIONS)) % len(COLOURS)]) + f" number {e}"
        write_episode(root / "episodes" / f"ep{e:03d}", 7000 + e, frames=6 + (e * 7) % 15,
                      scenario=SCENARIOS[e % len(SCENARIOS)], description=description)
    config = load(BuildConfig, {"sources": [f"frames:{root / 'episodes'}"],
                                "out": str(root / "data"), "seed": 5,
                                "tasks": {"windows_per_episode": 2, "frames_per_sample": LENGTHS,
                                          "candidates": CANDIDATES},
                                "split": {"ratios": {"train": 0.8, "test": 0.2}}})
    return build(config, show_progress=False).path


def test_mixed_lengths_leave_every_probe_at_chance(mixed: Path) -> None:
    info = json.loads((mixed / "build.json").read_text())
    assert set(info["counts"]["windows_by_frames"]) == {str(n) for n in LENGTHS}
    assert info["counts"]["windows_lengths_limited"] > 0  # episodes under 16 frames
    probes = info["probes"]
    assert probes["leaks"] == []
    for task, report in probes["tasks"].items():
        assert report["n"] >= 100, task
        for name, result in report["probes"].items():
            assert result["within"], (task, name, result)
        if task != "ordering":
            assert report["own_episode_tv"] <= 0.15, (task, report)


def test_negatives_are_as_common_at_every_length(mixed: Path) -> None:
    """A long window can leave no frame to stand in for a missing truth; it is then made a
    mismatch negative, not a positive, so the image count a question shows does not tell
    whether "None" is the answer."""
    info = json.loads((mixed / "build.json").read_text())
    assert info["counts"]["missing_asked_as_mismatch"] > 0
    assert info["counts"]["missing_asked_as_positive"] == 0
    counts: Counter[tuple[bool, bool]] = Counter()  # (long window, negative)
    for sample in Dataset.open(mixed).samples():
        if sample.options is not None:
            counts[(sample.meta["frames"] >= 12, sample.negative)] += 1
    short = counts[(False, True)] / (counts[(False, True)] + counts[(False, False)])
    long = counts[(True, True)] / (counts[(True, True)] + counts[(True, False)])
    assert abs(short - long) < 0.08, counts


def test_long_orders_are_answerable_in_both_forms(mixed: Path) -> None:
    from tpru.score.extract import extract_answer

    forms: Counter[tuple[str, int]] = Counter()
    for sample in Dataset.open(mixed).samples():
        n = sample.meta["frames"]
        assert sample.options is None or len(sample.options) == CANDIDATES[sample.task] + 1
        if sample.task != "ordering":
            continue
        forms[(sample.meta["form"], n)] += 1
        assert len(sample.images) == n
        if sample.options is None:  # letters A.. for every image, P for the 16th
            assert sorted(sample.answer) == [chr(65 + i) for i in range(n)]
            said = extract_answer(f"<answer>{sample.answer}</answer>", None, n)
        elif not sample.negative:  # an option lists every image number once
            gold = sample.options[ord(sample.answer) - 65]
            assert sorted(map(int, gold.split())) == list(range(1, n + 1))
            said = extract_answer(f"The order is {gold}.", sample.options)
        else:
            continue
        assert said.answer == sample.answer, (sample.id, said)
    assert {n for form, n in forms if form == "letters"} == set(LENGTHS)
    assert {n for form, n in forms if form == "options"} == set(LENGTHS)


def test_every_sample_and_twin_has_its_own_difficulty(mixed: Path) -> None:
    samples = {s.id: s for s in Dataset.open(mixed).samples()}
    twins = 0
    for sample in samples.values():
        record = sample.meta["difficulty"]
        assert record["frames"] == sample.meta["frames"] == len(sample.meta["window"])
        assert record["negative"] == sample.meta["negative_kind"]
        assert 0.0 <= record["score"] <= 1.0
        if "twin" in sample.meta and not sample.negative:
            twins += 1
            negative = samples[sample.meta["twin"]]
            assert record["negative"] is None and negative.meta["difficulty"]["negative"]
            # The same window; the same distractors (mismatch) or those less the stand-in
            # (missing): never a harder one, and no negative.
            assert record["gap"] == negative.meta["difficulty"]["gap"]
            assert record["score"] < negative.meta["difficulty"]["score"]
    assert twins > 0
