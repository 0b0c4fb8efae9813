"""The split report and the warning when a split misses a scenario."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_split import RULE, frame_table

from tpru.builder.split import SharedImages, plan_splits
from tpru.builder.split_report import split_report, warn_missing_scenarios
from tpru.diagnostics import InputError, Skips

# gui episodes 0 and 1 share three frames, 1 and 2 share two: one group held together by
# two shared frames. nav episodes 3 and 4 share nothing.
FRAMES = [(0, "a"), (0, "b"), (0, "c"), (0, "x0"),
          (1, "a"), (1, "b"), (1, "c"), (1, "d"), (1, "e"),
          (2, "d"), (2, "e"), (2, "x2"),
          (3, "n3"), (3, "m3"), (4, "n4"), (4, "m4")]
SCENARIOS = ["gui", "gui", "gui", "nav", "nav"]
IDS = ["g0", "g1", "g2", "n3", "n4"]
HALVES = {"train": 0.5, "test": 0.5}


def test_the_report_names_the_group_and_what_holds_it_together() -> None:
    plan = plan_splits(frame_table(FRAMES), IDS, SCENARIOS, HALVES, 0, RULE)
    report = split_report(plan, SharedImages(0, []))
    gui = plan.split_of[0]
    assert plan.split_of[:3] == [gui] * 3
    assert report["episodes_by_scenario"] == {
        "gui": {"train": 3 * (gui == "train"), "test": 3 * (gui == "test")},
        "nav": {"train": 1, "test": 1}}
    assert (report["joined_groups"], report["episodes_in_joined_groups"]) == (1, 3)
    assert report["largest_groups"] == [{
        "size": 3, "scenario": "gui", "split": gui, "episodes": ["g0", "g1", "g2"],
        "joined_pairs": 2, "most_shared_frames": 3, "apart_at_join_min_frames": 3}]
    assert report["shared_across_splits"] == {"images": 0, "examples": []}


def test_a_missing_scenario_is_a_warning_with_advice_and_an_error_when_strict() -> None:
    plan = plan_splits(frame_table(FRAMES), IDS, SCENARIOS, HALVES, 0, RULE)
    skips = Skips()
    warn_missing_scenarios(plan, skips)
    other = "test" if plan.split_of[0] == "train" else "train"
    assert skips.warning_summary() == [
        f"scenario 'gui' has no episodes in split '{other}' (split.ratios 0.5): its 3 episodes "
        "are joined into 1 group(s) of episodes that share identical or near-duplicate frames "
        "(the largest holds 3, held together by pairs that share 2 or more frames of each), "
        "and a group goes to one split whole; set split.join_min_frames=3 so that only "
        "episodes sharing at least 3 frames are joined, or add episodes of 'gui'"]
    with pytest.raises(InputError, match=r"^scenario 'gui' has no episodes in split .*--strict"):
        warn_missing_scenarios(plan, Skips(strict=True))

    # The advice: g0 and g1 stay together, g2 is free to go to the other split.
    advised = plan_splits(frame_table(FRAMES), IDS, SCENARIOS, HALVES, 0,
                          replace(RULE, min_frames=3))
    skips = Skips(strict=True)
    warn_missing_scenarios(advised, skips)
    assert skips.warning_counts == {}
    assert advised.split_of[0] == advised.split_of[1] != advised.split_of[2]
