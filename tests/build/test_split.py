"""Splits: grouping by shared and near-duplicate images, ratios, the leakage check."""

from __future__ import annotations

import numpy as np
import pytest

from tpru.build.split import (
    LeakageError,
    assign_splits,
    check_leakage,
    group_episodes,
    near_duplicate_pairs,
)


def thumbs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 256), dtype=np.uint8)


def test_near_duplicates_found_within_hamming_only() -> None:
    base = 0x0123456789ABCDEF
    hashes = np.array([base, base ^ 0b111, base ^ ((1 << 20) - 1), base], dtype=np.uint64)
    t = thumbs(4)
    t[1] = t[0]
    t[3] = t[0]
    pairs = set(near_duplicate_pairs(hashes, t, 4, 0.01))
    assert pairs == {(0, 1), (0, 3), (1, 3)}
    # Same hash but different pixels is not a near-duplicate.
    t2 = thumbs(4, seed=1)
    assert set(near_duplicate_pairs(hashes, t2, 4, 0.01)) == set()
    # Rows with the same label are never paired.
    assert set(near_duplicate_pairs(hashes, t, 4, 0.01, same=[0, 0, 1, 0])) == set()


def test_grouping_by_shared_image_and_near_duplicate() -> None:
    # Episodes 0 and 1 share a digest; 2 and 3 share a near-duplicate; 4 is alone.
    frame_episode = np.array([0, 0, 1, 1, 2, 3, 4])
    digests = np.array([b"a", b"b", b"b", b"c", b"d", b"e", b"f"], dtype="S32")
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 7, dtype=np.int64).astype(np.uint64)
    hashes[5] = hashes[4] ^ np.uint64(1)
    t = thumbs(7)
    t[5] = t[4]
    groups = group_episodes(frame_episode, digests, hashes, t, 5, 4, 0.01)
    assert groups[0] == groups[1] and groups[2] == groups[3]
    assert len({groups[0], groups[2], groups[4]}) == 3


def test_assign_splits_keeps_groups_and_follows_ratios() -> None:
    n = 200
    groups = [i - i % 2 for i in range(n)]  # pairs of episodes
    ids = [f"ep{i:03d}" for i in range(n)]
    splits = assign_splits(groups, ids, {"train": 0.8, "test": 0.2}, seed=0)
    assert all(splits[i] == splits[i + 1] for i in range(0, n, 2))
    assert abs(splits.count("test") - 40) <= 2
    assert splits == assign_splits(groups, ids, {"test": 0.2, "train": 0.8}, seed=0)
    assert splits != assign_splits(groups, ids, {"train": 0.8, "test": 0.2}, seed=1)


def test_leakage_check_fails_on_each_kind_of_leak() -> None:
    digests = np.array([b"x", b"y", b"z"], dtype="S32")
    t = thumbs(3)
    t[2] = t[1]
    ph = np.array([1, 1 << 40, (1 << 40) | 1], dtype=np.uint64)  # y and z: near-duplicates

    def masks(train: list[int], test: list[int]) -> dict[str, np.ndarray]:
        out = {"train": np.zeros(3, bool), "test": np.zeros(3, bool)}
        out["train"][train] = True
        out["test"][test] = True
        return out

    clean_eps = {"train": {"a"}, "test": {"b"}}
    check_leakage(clean_eps, masks([0], [1]), digests, ph, 4, 0.01, thumbs=t)
    with pytest.raises(LeakageError, match="episode a"):
        check_leakage({"train": {"a"}, "test": {"a"}}, masks([], []), digests, ph, 4, 0.01,
                      thumbs=t)
    with pytest.raises(LeakageError, match="image x"):
        check_leakage(clean_eps, masks([0], [0]), digests, ph, 4, 0.01, thumbs=t)
    with pytest.raises(LeakageError, match="near-duplicates"):
        check_leakage(clean_eps, masks([1], [2]), digests, ph, 4, 0.01, thumbs=t)


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
