"""Leak-free splits: group episodes that share images, assign groups, then check.

Two episodes that share an image, or near-duplicate images, are put in one
group, and every group goes to one split; distractors are drawn only from the
sample's own split. `check_leakage` then verifies the written dataset from
scratch and fails the build if any episode, image or near-duplicate image
appears in more than one split.

Near-duplicates are found without comparing all pairs: a 64-bit hash within
``h`` bits of another agrees with it exactly on at least one of ``h + 1``
chunks (pigeonhole), so only frames sharing a chunk are compared, and a
shared chunk is confirmed by the full hash and the thumbnail difference.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

BUCKET_WINDOW = 64
"""In a very large bucket, each frame is compared with this many neighbours in hash order."""


class LeakageError(Exception):
    """The same episode, image or a near-duplicate image is in two splits."""


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _chunks(bits: int, parts: int) -> list[tuple[int, int]]:
    """(shift, mask) pairs cutting a 64-bit value into `parts` nearly equal chunks."""
    edges = [round(i * bits / parts) for i in range(parts + 1)]
    return [(edges[i], (1 << (edges[i + 1] - edges[i])) - 1) for i in range(parts)]


def near_duplicate_pairs(phashes: np.ndarray, thumbs: np.ndarray, max_hamming: int,
                         max_pixel_diff: float, *,
                         same: Sequence[object] | np.ndarray | None = None,
                         thumb_rows: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Pairs of rows (i < j) whose images are near-duplicates, sorted.

    Rows with equal ``same`` labels (e.g. the same episode) are not paired.
    Row i's thumbnail is ``thumbs[thumb_rows[i]]`` when `thumb_rows` is given
    (so a large memory-mapped table is read only where a pair is likely).
    For each chunk the rows are sorted by (chunk, hash) and each row is
    compared, all at once in numpy, with the next `BUCKET_WINDOW` rows of its
    bucket: exact for buckets up to that size, a close approximation beyond.
    """
    hashes = np.asarray(phashes, dtype=np.uint64)
    n = len(hashes)
    labels = None if same is None else np.unique(np.asarray(same), return_inverse=True)[1]
    found: set[tuple[int, int]] = set()
    if n < 2:
        return []
    limit = np.float32(max_pixel_diff * 255.0 * thumbs.shape[1]) if thumbs.ndim == 2 else 0
    for shift, mask in _chunks(64, max_hamming + 1):
        keys = (hashes >> np.uint64(shift)) & np.uint64(mask)
        order = np.lexsort((hashes, keys))
        sorted_keys = keys[order]
        for k in range(1, min(BUCKET_WINDOW, n - 1) + 1):
            a, b = order[:-k], order[k:]
            near = (sorted_keys[:-k] == sorted_keys[k:]) & \
                (np.bitwise_count(hashes[a] ^ hashes[b]) <= max_hamming)
            if labels is not None:
                near &= labels[a] != labels[b]
            if not near.any():
                if not (sorted_keys[:-k] == sorted_keys[k:]).any():
                    break  # no bucket has more than k members
                continue
            a, b = a[near], b[near]
            ta, tb = (a, b) if thumb_rows is None else (thumb_rows[a], thumb_rows[b])
            diff = np.abs(thumbs[ta].astype(np.int16) - thumbs[tb].astype(np.int16)).sum(axis=1)
            for i, j in zip(a[diff <= limit].tolist(), b[diff <= limit].tolist(), strict=True):
                found.add((i, j) if i < j else (j, i))
    return sorted(found)


def group_episodes(frame_episode: np.ndarray, digests: np.ndarray, phashes: np.ndarray,
                   thumbs: np.ndarray, n_episodes: int, max_hamming: int,
                   max_pixel_diff: float) -> list[int]:
    """Group id (the smallest episode index in it) for each episode."""
    groups = UnionFind(n_episodes)
    episode_of = np.asarray(frame_episode, dtype=np.int64)
    order = np.argsort(digests, kind="stable")
    same_digest = digests[order][1:] == digests[order][:-1]
    for a, b in zip(episode_of[order][:-1][same_digest].tolist(),
                    episode_of[order][1:][same_digest].tolist(), strict=True):
        groups.union(a, b)
    for i, j in near_duplicate_pairs(phashes, thumbs, max_hamming, max_pixel_diff,
                                     same=episode_of):
        groups.union(int(episode_of[i]), int(episode_of[j]))
    return [groups.find(e) for e in range(n_episodes)]


def assign_splits(group_of: Sequence[int], episode_ids: Sequence[str],
                  ratios: Mapping[str, float], seed: int) -> list[str]:
    """Split name per episode: whole groups, in a seeded order, filling the ratios in turn."""
    members: dict[int, list[int]] = defaultdict(list)
    for episode, group in enumerate(group_of):
        members[group].append(episode)

    def rank(group: int) -> str:
        return hashlib.sha256(f"{seed}:{episode_ids[group]}".encode()).hexdigest()

    names = sorted(ratios)  # independent of the mapping's order (YAML, JSON, overrides)
    total_ratio = sum(ratios.values())
    bounds = []
    running = 0.0
    for name in names:
        running += ratios[name] / total_ratio
        bounds.append(running)
    total = len(group_of)
    result = [""] * total
    done = 0
    for group in sorted(members, key=rank):
        size = len(members[group])
        position = (done + size / 2) / max(total, 1)
        name = next((n for n, b in zip(names, bounds, strict=True) if position <= b), names[-1])
        for episode in members[group]:
            result[episode] = name
        done += size
    return result


def check_leakage(split_episodes: Mapping[str, set[str]], split_images: Mapping[str, np.ndarray],
                  digests: np.ndarray, phashes: np.ndarray, max_hamming: int,
                  max_pixel_diff: float, *, thumbs: np.ndarray,
                  thumb_rows: np.ndarray | None = None) -> None:
    """Raise `LeakageError` if an episode, image or near-duplicate image is in two splits.

    Args:
        split_episodes: episode ids each split's samples use (their own and
            their distractors').
        split_images: per split, a boolean mask over the images (rows of
            `digests` and `phashes`, one row per distinct image) that its
            samples use.
        thumbs: thumbnails, row ``thumb_rows[i]`` (or ``i``) for image i; a
            memory map is fine, it is read only where a pair is likely.
    """
    problems: list[str] = []
    owner: dict[str, str] = {}
    for split in sorted(split_episodes):
        for episode in sorted(split_episodes[split]):
            first = owner.setdefault(episode, split)
            if first != split:
                problems.append(f"episode {episode} is in both {first} and {split}")
    names = sorted(split_images)
    if names:
        uses = np.sum([split_images[s] for s in names], axis=0)
        for row in np.flatnonzero(uses > 1)[:10].tolist():
            where = [s for s in names if split_images[s][row]]
            problems.append(f"image {digests[row].decode()} is in {' and '.join(where)}")
        rows = np.concatenate([np.flatnonzero(split_images[s]) for s in names])
        labels = np.concatenate([np.full(int(split_images[s].sum()), i) for i, s in
                                 enumerate(names)])
        for i, j in near_duplicate_pairs(
                phashes[rows], thumbs, max_hamming, max_pixel_diff, same=labels,
                thumb_rows=rows if thumb_rows is None else thumb_rows[rows])[:10]:
            problems.append(f"images {digests[rows[i]].decode()} ({names[labels[i]]}) and "
                            f"{digests[rows[j]].decode()} ({names[labels[j]]}) are "
                            "near-duplicates")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise LeakageError("leakage between splits: " + "; ".join(problems[:5]) + more)
