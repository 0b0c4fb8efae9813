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
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from tpru.build.images import hamming, thumb_diff

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
                         max_pixel_diff: float, *, same: Sequence[object] | None = None
                         ) -> Iterator[tuple[int, int]]:
    """Pairs of rows (i < j) whose images are near-duplicates.

    Rows with equal ``same`` labels (e.g. the same episode) are not paired.
    """
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row, value in enumerate(int(v) for v in phashes):
        for c, (shift, mask) in enumerate(_chunks(64, max_hamming + 1)):
            buckets[(c, (value >> shift) & mask)].append(row)
    seen: set[tuple[int, int]] = set()
    for key in sorted(buckets):
        rows = buckets[key]
        if len(rows) < 2:
            continue
        rows = sorted(rows, key=lambda r: (int(phashes[r]), r))
        for a_pos, a in enumerate(rows):
            limit = len(rows) if len(rows) <= 4 * BUCKET_WINDOW else a_pos + 1 + BUCKET_WINDOW
            for b in rows[a_pos + 1: limit]:
                i, j = (a, b) if a < b else (b, a)
                if (i, j) in seen or (same is not None and same[i] == same[j]):
                    continue
                if hamming(int(phashes[i]), int(phashes[j])) <= max_hamming and \
                        thumb_diff(thumbs[i], thumbs[j]) <= max_pixel_diff:
                    seen.add((i, j))
                    yield i, j


def group_episodes(frame_episode: np.ndarray, digests: np.ndarray, phashes: np.ndarray,
                   thumbs: np.ndarray, n_episodes: int, max_hamming: int,
                   max_pixel_diff: float) -> list[int]:
    """Group id (the smallest episode index in it) for each episode."""
    groups = UnionFind(n_episodes)
    first_owner: dict[bytes, int] = {}
    for row, digest in enumerate(digests):
        owner = first_owner.setdefault(bytes(digest), int(frame_episode[row]))
        groups.union(owner, int(frame_episode[row]))
    episode_of = [int(e) for e in frame_episode]
    for i, j in near_duplicate_pairs(phashes, thumbs, max_hamming, max_pixel_diff,
                                     same=episode_of):
        groups.union(episode_of[i], episode_of[j])
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


def check_leakage(split_episodes: Mapping[str, set[str]], split_images: Mapping[str, set[bytes]],
                  image_phash: Mapping[bytes, int], image_thumb: Mapping[bytes, np.ndarray],
                  max_hamming: int, max_pixel_diff: float) -> None:
    """Raise `LeakageError` if an episode, image or near-duplicate image is in two splits."""
    problems: list[str] = []
    for kind, table in (("episode", split_episodes), ("image", split_images)):
        owner: dict[object, str] = {}
        for split in sorted(table):
            for item in sorted(table[split]):
                first = owner.setdefault(item, split)
                if first != split:
                    shown = item.decode() if isinstance(item, bytes) else item
                    problems.append(f"{kind} {shown} is in both {first} and {split}")
    rows: list[tuple[bytes, str]] = [(d, s) for s in sorted(split_images)
                                     for d in sorted(split_images[s])]
    if rows and len(split_images) > 1:
        phashes = np.array([image_phash[d] for d, _ in rows], dtype=np.uint64)
        thumbs = np.stack([image_thumb[d] for d, _ in rows])
        for i, j in near_duplicate_pairs(phashes, thumbs, max_hamming, max_pixel_diff,
                                         same=[s for _, s in rows]):
            problems.append(f"images {rows[i][0].decode()} ({rows[i][1]}) and "
                            f"{rows[j][0].decode()} ({rows[j][1]}) are near-duplicates")
            if len(problems) > 20:
                break
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise LeakageError("leakage between splits: " + "; ".join(problems[:5]) + more)
