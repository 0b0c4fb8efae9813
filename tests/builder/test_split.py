"""Splits: the join rule, stratified assignment, the leakage check and its report."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tpru.builder.candidates import FrameTable
from tpru.builder.split import (
    JoinRule,
    LeakageError,
    SharedImages,
    assign_splits,
    check_leakage,
    frame_links,
    group_episodes,
    link_episodes,
    near_duplicate_pairs,
)

RULE = JoinRule(max_hamming=4, max_pixel_diff=0.01, min_frames=2)


def thumbs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 256), dtype=np.uint8)


def frame_table(frames: list[tuple[int, str]], near: dict[int, int] | None = None) -> FrameTable:
    """Frames as (episode, digest): equal digests are one image (equal hash and thumbnail),
    and ``near[i] = j`` makes frame i a re-encoded near-duplicate of frame j."""
    n = len(frames)
    digests = np.array([d.encode() for _, d in frames], dtype="S32")
    names = sorted(set(digests.tolist()))
    rng = np.random.default_rng(0)
    hash_of = dict(zip(names, rng.integers(0, 2**63, len(names), dtype=np.int64).astype(
        np.uint64).tolist(), strict=True))
    thumb_of = dict(zip(names, thumbs(len(names)), strict=True))
    phash = np.array([hash_of[d] for d in digests.tolist()], dtype=np.uint64)
    thumb = np.stack([thumb_of[d] for d in digests.tolist()])
    for i, j in (near or {}).items():
        phash[i] = phash[j] ^ np.uint64(0b101)
        thumb[i] = thumb[j]
    return FrameTable(episode=np.array([e for e, _ in frames], dtype=np.int32),
                      position=np.zeros(n, np.int32), phash=phash, thumbs=thumb,
                      embeddings=np.zeros((n, 1), np.float32), digest=digests,
                      ext=np.full(n, b"jpg", dtype="S4"))


def links_of(table: FrameTable, rule: JoinRule = RULE) -> dict[tuple[int, int], tuple[int, int]]:
    pairs = frame_links(table.episode, table.digest, table.phash, table.thumbs, rule)
    links = link_episodes(table.episode, pairs)
    return {(a, b): (fa, fb) for a, b, fa, fb in zip(
        links.first.tolist(), links.second.tolist(), links.first_frames.tolist(),
        links.second_frames.tolist(), strict=True)}


# Episodes 0 and 1 are copies (three identical frames); 2 and 3 share two re-encoded
# frames; 4, 5 and 6 begin on one start screen and go their own ways; 7 shows 6's last
# screen twice, which is one frame of 6 and so joins nothing.
SCENES = [(0, "a0"), (0, "a1"), (0, "a2"), (1, "a0"), (1, "a1"), (1, "a2"),
          (2, "b0"), (2, "b1"), (2, "b2"), (3, "c0"), (3, "c1"), (3, "c2"),
          (4, "home"), (4, "d1"), (5, "home"), (5, "e1"), (6, "home"), (6, "f1"),
          (7, "f1"), (7, "g1"), (7, "f1")]
NEAR = {9: 6, 10: 7}


def test_episodes_are_joined_only_by_enough_shared_frames_of_each() -> None:
    table = frame_table(SCENES, NEAR)
    assert links_of(table) == {(0, 1): (3, 3), (2, 3): (2, 2), (4, 5): (1, 1), (4, 6): (1, 1),
                               (5, 6): (1, 1), (6, 7): (1, 2)}
    links = link_episodes(table.episode, frame_links(table.episode, table.digest, table.phash,
                                                     table.thumbs, RULE))
    assert group_episodes(links, 8, 2) == [0, 0, 2, 2, 4, 5, 6, 7]
    assert group_episodes(links, 8, 3) == [0, 0, 2, 3, 4, 5, 6, 7]
    # join_min_frames=1 is the old rule: any shared or near-duplicate image joins.
    assert group_episodes(links, 8, 1) == [0, 0, 2, 2, 4, 4, 4, 4]


def test_a_start_screen_shared_by_many_episodes_costs_linear_pairs() -> None:
    n = 2_000
    frames = [(e, d) for e in range(n) for d in ("home", f"s{e}")]
    table = frame_table(frames)
    pairs = frame_links(table.episode, table.digest, table.phash, table.thumbs, RULE)
    assert 0 < len(pairs) <= 2 * 64 * n  # not n * (n - 1) / 2
    links = link_episodes(table.episode, pairs)
    assert group_episodes(links, n, 2) == list(range(n))


def test_assign_splits_keeps_groups_and_follows_ratios() -> None:
    n = 200
    groups = [i - i % 2 for i in range(n)]  # pairs of episodes
    ids = [f"ep{i:03d}" for i in range(n)]
    splits = assign_splits(groups, ids, {"train": 0.8, "test": 0.2}, seed=0)
    assert all(splits[i] == splits[i + 1] for i in range(0, n, 2))
    assert abs(splits.count("test") - 40) <= 2
    assert splits == assign_splits(groups, ids, {"test": 0.2, "train": 0.8}, seed=0)
    assert splits != assign_splits(groups, ids, {"train": 0.8, "test": 0.2}, seed=1)


def test_assign_splits_stratifies_by_scenario() -> None:
    # Three scenarios of 40, 20 and 3 episodes; the robot episodes come in joined pairs.
    scenarios = ["robot"] * 40 + ["gui"] * 20 + ["nav"] * 3
    groups = [i - i % 2 if i < 40 else i for i in range(len(scenarios))]
    ids = [f"ep{i:03d}" for i in range(len(scenarios))]
    ratios = {"train": 0.7, "val": 0.15, "test": 0.15}
    for seed in range(5):
        splits = assign_splits(groups, ids, ratios, seed, scenarios)
        assert splits == assign_splits(groups, ids, dict(reversed(ratios.items())), seed,
                                       scenarios)
        assert all(splits[i] == splits[i + 1] for i in range(0, 40, 2))
        by = {s: Counter(x for x, y in zip(splits, scenarios, strict=True) if y == s)
              for s in ("robot", "gui", "nav")}
        assert by["robot"]["train"] == 28 and by["robot"]["val"] == by["robot"]["test"] == 6
        assert by["gui"]["train"] == 14 and by["gui"]["val"] == by["gui"]["test"] == 3
        assert by["nav"] == {"train": 1, "val": 1, "test": 1}  # one each: as many as splits
    assert len({tuple(assign_splits(groups, ids, ratios, seed, scenarios))
                for seed in range(5)}) == 5


def test_a_small_scenario_reaches_a_small_split_once_it_has_a_group_per_split() -> None:
    ratios = {"train": 0.9, "test": 0.1}
    assert sorted(assign_splits([0, 1], ["a", "b"], ratios, 0, ["gui", "gui"])) == \
        ["test", "train"]
    assert assign_splits([0], ["a"], ratios, 0, ["gui"]) == ["train"]
    # Rounding in one scenario is made up in the next: 4 x 6 episodes at 25% give 6, not 8.
    scenarios = ["robot", "lego", "gui", "nav"] * 6
    assert Counter(assign_splits(list(range(24)), [f"e{i:02d}" for i in range(24)],
                                 {"train": 0.75, "test": 0.25}, 0, scenarios)) == \
        {"train": 18, "test": 6}
    # A split with share 0 gets nothing.
    assert set(assign_splits(list(range(9)), list("abcdefghi"), {**ratios, "val": 0.0}, 0,
                             ["gui"] * 9)) == {"train", "test"}


def check(table: FrameTable, split_of: dict[int, str], written: dict[str, list[str]],
          rule: JoinRule = RULE) -> SharedImages:
    """check_leakage with episodes ``e0`` ... in `split_of` and images written by digest."""
    images = np.unique(table.digest)
    masks = {s: np.isin(images, np.array([d.encode() for d in ds], dtype="S32"))
             for s, ds in written.items()}
    episodes = {s: {f"e{e}" for e, x in split_of.items() if x == s} for s in written}
    ids = [f"e{e}" for e in range(int(table.episode.max()) + 1)]
    return check_leakage(episodes, masks, images, table, ids, rule)


def test_leakage_check_passes_episodes_apart_that_share_a_start_screen() -> None:
    table = frame_table(SCENES, NEAR)
    shared = check(table, {4: "train", 5: "test", 6: "test"},
                   {"train": ["home", "d1"], "test": ["home", "e1", "f1"]})
    assert shared.images == 1
    assert shared.examples == ["image home is in train (episode e4) and test (episode e5)",
                               "image home is in train (episode e4) and test (episode e6)"]
    # A start screen written only on one side is no shared image.
    assert check(table, {4: "train", 5: "test"},
                 {"train": ["d1"], "test": ["home", "e1"]}).images == 0


def test_leakage_check_fails_on_each_kind_of_leak() -> None:
    table = frame_table(SCENES, NEAR)
    with pytest.raises(LeakageError, match=r"episodes e0 \(train\) and e1 \(test\) share 3 "
                                           "identical or near-duplicate frames"):
        check(table, {0: "train", 1: "test"}, {"train": ["a0"], "test": ["a1"]})
    with pytest.raises(LeakageError, match=r"episodes e2 \(test\) and e3 \(train\) share 2"):
        check(table, {2: "test", 3: "train"}, {"train": ["c0"], "test": ["b0"]})
    images = np.unique(table.digest)
    none = np.zeros(len(images), dtype=bool)
    with pytest.raises(LeakageError, match="episode e4 is in both test and train"):
        check_leakage({"train": {"e4"}, "test": {"e4"}}, {"train": none, "test": none},
                      images, table, [f"e{e}" for e in range(8)], RULE)
    with pytest.raises(LeakageError, match="image d1 is in test but is no frame of its episodes"):
        check(table, {4: "train", 5: "test"}, {"train": ["d1"], "test": ["d1"]})
    # Under join_min_frames=4 the copies may be apart: their frames are reported instead.
    loose = JoinRule(4, 0.01, 4)
    shared = check(table, {0: "train", 1: "test"}, {"train": ["a0", "a1"], "test": ["a1"]},
                   loose)
    assert (shared.images, shared.examples) == (
        1, ["image a1 is in train (episode e0) and test (episode e1)"])
    shared = check(table, {2: "train", 3: "test"}, {"train": ["b0"], "test": ["c0"]}, loose)
    assert (shared.images, shared.examples) == (2, [
        "images b0 and c0 are near-duplicates, in train (episode e2) and test (episode e3)"])


def test_near_duplicates_in_large_buckets_and_at_scale() -> None:
    """100,000 random hashes plus 50 planted near-duplicate pairs: all 50 are found."""
    rng = np.random.default_rng(3)
    n = 100_000
    hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    t = rng.integers(0, 255, (n, 256), dtype=np.uint8)
    planted = []
    for k in range(50):
        i, j = 2 * k, n - 1 - 2 * k
        hashes[j] = hashes[i] ^ np.uint64(0b1011 << (k % 60))
        t[j] = t[i]
        planted.append((i, j))
    found = near_duplicate_pairs(hashes, t, 4, 0.01)
    assert set(planted) <= set(found)
    assert len(found) == 50
