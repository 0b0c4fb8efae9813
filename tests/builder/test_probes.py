"""Shortcut probes: each catches the shortcut it names, and tpru's samples have none."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from tpru.builder.probe_rules import ProbeItem
from tpru.builder.probes import leak_message, run_probes, wilson
from tpru.builder.tasks import Header, LetterBalancer, next_frame, ordering_options
from tpru.schema import IMAGE_OPTION, NONE_OPTION

N = 600


def _kind(rng: random.Random) -> str | None:
    r = rng.random()
    return None if r < 0.7 else ("mismatch" if r < 0.85 else "missing")


def _split(i: int) -> str:
    return "test" if i % 5 == 0 else "train"


def _item(i: int, options: list[str], gold: int, task: str = "ordering",
          candidates: list[dict[str, Any] | None] | None = None,
          scenario: str = "robot") -> ProbeItem:
    return ProbeItem(f"e{i}/{task}", _split(i), task, f"e{i}", scenario, tuple(options), gold,
                     None if candidates is None else tuple(candidates))


def _report(items: list[ProbeItem]) -> dict[str, Any]:
    return run_probes(items, max_lift=0.05, min_samples=100)


def _place(truth: str | None, distractors: list[str], gold: int, rng: random.Random
           ) -> list[str]:
    slots: list[str | None] = [None] * 5
    free = [i for i in range(5) if i != gold]
    rng.shuffle(free)
    if truth is None:
        slots[gold] = NONE_OPTION
    else:
        slots[gold] = truth
        slots[free.pop()] = NONE_OPTION
    for slot, item in zip(sorted(free), distractors, strict=False):
        slots[slot] = item
    return [s for s in slots if s is not None]


def _around_the_truth(i: int, rng: random.Random, balancer: LetterBalancer) -> ProbeItem:
    """The earlier design: wrong orders one swap from the truth, the truth their centre."""
    truth = list("1234")
    rng.shuffle(truth)
    near = []
    for a in range(3):
        swapped = list(truth)
        swapped[a], swapped[a + 1] = swapped[a + 1], swapped[a]
        near.append(" ".join(swapped))
    far = list(truth)
    while " ".join(far) in near or far == truth:
        rng.shuffle(far)
    kind = _kind(rng)
    gold = balancer.draw((_split(i),), 5)
    text = " ".join(truth)
    if kind == "missing":
        options = _place(None, [*near, " ".join(far)], gold, rng)
    else:
        options = _place(text if kind is None else None,
                         near + ([" ".join(far)] if kind is None else [" ".join(far), text]),
                         gold, rng)
    return _item(i, options, gold)


def test_centre_probes_catch_options_built_around_the_truth() -> None:
    rng, balancer = random.Random(0), LetterBalancer(0)
    report = _report([_around_the_truth(i, rng, balancer) for i in range(N)])
    probes = report["tasks"]["ordering"]["probes"]
    assert "ordering/transposition_centre" in report["leaks"]
    assert "ordering/kendall_centre" in report["leaks"]
    assert probes["transposition_centre"]["accuracy"] > 0.3
    assert "transposition_centre answers" in leak_message(report)


def test_tpru_ordering_options_leak_nothing() -> None:
    rng, balancer = random.Random(1), LetterBalancer(1)
    items = []
    for i in range(2000):
        kind = _kind(rng)
        sample = ordering_options(Header(f"e{i}", "robot", f"e{i}"),
                                  [f"f{j}" for j in range(4)], "", candidates=4,
                                  gold=balancer.draw((_split(i),), 5), negative_kind=kind,
                                  rng=rng, meta={"split": _split(i)})
        item = ProbeItem.from_sample(sample)
        assert item is not None
        items.append(item)
    report = _report(items)
    assert report["leaks"] == []
    for name, result in report["tasks"]["ordering"]["probes"].items():
        assert result["within"], (name, result)


def test_majority_letter_catches_a_favourite_letter() -> None:
    rng = random.Random(2)
    items = []
    for i in range(N):
        gold = 0 if rng.random() < 0.5 else rng.randrange(5)
        items.append(_item(i, ["a", "b", "c", "d", NONE_OPTION], gold, task="next_frame"))
    report = _report(items)
    assert "next_frame/majority_letter" in report["leaks"]


def test_longest_option_catches_a_longer_truth() -> None:
    rng = random.Random(3)
    items = []
    for i in range(N):
        gold = rng.randrange(4)
        options = ["short"] * 4 + [NONE_OPTION]
        options[gold] = "the longest option of all"
        items.append(_item(i, options, gold, task="custom"))
    assert "custom/longest_option" in _report(items)["leaks"]


def _image_item(i: int, rng: random.Random, *, own_in_negatives: int,
                other_scenario: bool = False) -> ProbeItem:
    """A next-frame item whose negatives carry `own_in_negatives` own-episode candidates
    (positives: the truth and one more)."""
    negative = rng.random() < 0.3
    gold = rng.randrange(5)
    options = [IMAGE_OPTION] * 5
    options[gold if negative else (gold + 1 + rng.randrange(4)) % 5] = NONE_OPTION
    own = own_in_negatives if negative else 2
    candidates: list[dict[str, Any] | None] = []
    for option in options:
        if option == NONE_OPTION:
            candidates.append(None)
            continue
        mine = own > 0
        own -= mine
        scenario = "lego" if negative and other_scenario and not mine else "robot"
        candidates.append({"episode": f"e{i}" if mine else f"x{rng.randrange(50)}",
                           "frame": 0, "scenario": scenario})
    return _item(i, options, gold, task="next_frame", candidates=candidates)


def test_provenance_probes_catch_negatives_without_own_frames() -> None:
    rng = random.Random(4)
    report = _report([_image_item(i, rng, own_in_negatives=0) for i in range(N)])
    assert "next_frame/own_episode_count" in report["leaks"]
    assert report["tasks"]["next_frame"]["own_episode_tv"] == 1.0


def test_provenance_probes_catch_candidates_from_another_scenario() -> None:
    rng = random.Random(5)
    report = _report([_image_item(i, rng, own_in_negatives=2, other_scenario=True)
                      for i in range(N)])
    assert "next_frame/other_scenario_count" in report["leaks"]
    assert "next_frame/own_episode_count" not in report["leaks"]
    assert report["tasks"]["next_frame"]["own_episode_tv"] == 0.0


def test_tpru_image_candidates_by_provenance_leak_nothing() -> None:
    """Built by the formulator as the builder calls it: a missing negative's stand-in
    is from the own episode (see test_candidates for the picking itself)."""
    rng, balancer = random.Random(6), LetterBalancer(6)
    items = []
    for i in range(1500):
        kind = _kind(rng)
        own = [f"e{i}-{k}" for k in range(2 if kind == "missing" else 1)]
        cross = [f"x{rng.randrange(90)}-{k}" for k in range(2)]
        sample = next_frame(Header(f"e{i}", "robot", f"e{i}"), [f"e{i}-f{j}" for j in range(4)],
                            [*own, *cross], "", candidates=4,
                            gold=balancer.draw((_split(i),), 5), negative_kind=kind, rng=rng,
                            meta={"split": _split(i)})
        images = iter(sample.option_images)
        candidates = [None if o == NONE_OPTION else
                      {"episode": next(images).split("-")[0], "frame": 0, "scenario": "robot"}
                      for o in sample.options or ()]
        item = ProbeItem.from_sample(sample)
        assert item is not None
        items.append(ProbeItem(item.id, item.split, item.task, item.episode_id, item.scenario,
                               item.options, item.gold, tuple(candidates)))
    report = _report(items)
    assert report["leaks"] == []
    assert report["tasks"]["next_frame"]["own_episode_tv"] <= 0.05


def test_always_none_is_the_share_of_negatives_and_never_fails() -> None:
    rng = random.Random(7)
    items = [_item(i, ["a", "b", "c", "d", NONE_OPTION], 4 if rng.random() < 0.6 else 0,
                   task="t") for i in range(N)]
    report = _report(items)
    always = report["tasks"]["t"]["probes"]["always_none"]
    assert always["accuracy"] == report["tasks"]["t"]["negative_share"] == always["chance"]
    assert always["reference"] and "t/always_none" not in report["leaks"]


def test_few_samples_never_fail() -> None:
    rng, balancer = random.Random(0), LetterBalancer(0)
    items = [_around_the_truth(i, rng, balancer) for i in range(60)]
    report = run_probes(items, max_lift=0.05, min_samples=100)
    assert report["leaks"] == []
    assert report["tasks"]["ordering"]["probes"]["transposition_centre"]["lift"] > 0.05


@pytest.mark.parametrize(("k", "n"), [(0, 10), (5, 10), (10, 10), (30, 100)])
def test_wilson_interval_holds_the_estimate(k: int, n: int) -> None:
    low, high = wilson(k, n)
    assert 0 <= low <= k / n <= high <= 1


def test_question_images_catches_negatives_that_follow_the_length() -> None:
    """Negatives far more common in long questions than short ones: the image count, which
    the question text shows, tells None apart."""
    rng = random.Random(6)
    items = []
    for i in range(N):
        item = _image_item(i, rng, own_in_negatives=2)
        long = item.negative if rng.random() < 0.9 else not item.negative
        items.append(dataclasses.replace(item, images=15 if long else 2))
    report = _report(items)
    assert "next_frame/question_images" in report["leaks"]
    assert "next_frame/own_episode_count" not in report["leaks"]
    evenly = [dataclasses.replace(item, images=rng.choice((2, 4, 7, 15))) for item in items]
    assert "next_frame/question_images" not in _report(evenly)["leaks"]
