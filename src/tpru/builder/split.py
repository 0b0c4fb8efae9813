"""Leak-free splits: find the frames episodes share, plan the splits, check the result.

Two episodes are joined, and go to one split, when at least
``split.join_min_frames`` frames of *each* have an identical or near-duplicate
frame in the other: copies and re-recordings of one process are kept
together, while a single frame in common (the start screen every recording of
an app begins on) does not join them. Groups are then dealt out per scenario,
so every scenario reaches every split. `check_leakage` verifies the written
dataset with the same `JoinRule`: an episode in two splits, or two episodes in
different splits that the rule joins, fails the build; images that episodes
kept apart share across splits are counted and reported (`SharedImages`).

Near-duplicates are found without comparing all pairs: a 64-bit hash within
``h`` bits of another agrees with it exactly on at least one of ``h + 1``
chunks (pigeonhole), so only frames sharing a chunk are compared, and a
shared chunk is confirmed by the full hash and the thumbnail difference.
Turning the frame pairs into episode groups and the groups into splits is
`tpru.builder.groups`'s part.
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from tpru.builder.candidates import FrameTable, gather, release
from tpru.builder.episodes import EpisodeUse
from tpru.builder.groups import EpisodeLinks, assign_splits, group_episodes, link_episodes

BUCKET_WINDOW = 64
"""In a very large bucket, each frame is compared with this many neighbours in hash order."""

PARTITION_ROWS = 1 << 16
"""The grouping and the leakage check compare frames a partition of about this many rows at
a time (and read the table in blocks of this many), so their memory does not grow with the
number of frames."""


class LeakageError(Exception):
    """An episode is in two splits, or two episodes the join rule keeps together are apart."""


@dataclass(frozen=True)
class JoinRule:
    """When two episodes must share a split; grouping and `check_leakage` apply the same one:
    at least `min_frames` (``split.join_min_frames``) frames of each have an identical or
    near-duplicate frame in the other, near-duplicates being frames whose hashes differ in
    at most `max_hamming` bits (``split.near_dup_hamming``) and whose thumbnails differ by
    at most `max_pixel_diff` (``filter.dup_pixel_diff``)."""

    max_hamming: int
    max_pixel_diff: float
    min_frames: int


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
    labels = None if same is None else np.unique(np.asarray(same), return_inverse=True)[1]
    pairs = _unique_pairs(_near_duplicates(np.asarray(phashes, dtype=np.uint64), thumbs,
                                           max_hamming, max_pixel_diff, labels, thumb_rows,
                                           None))
    return [(i, j) for i, j in pairs.tolist()]


class _Labels(Protocol):
    """Per-row labels, read a partition at a time: an array, or one computed on demand."""

    def __getitem__(self, rows: np.ndarray) -> np.ndarray: ...


def _partitions(n: int, part_of: Callable[[np.ndarray], np.ndarray], parts: int,
                labels: _Labels | None, scratch: Path | None) -> Iterator[np.ndarray]:
    """The rows 0..n-1 whose label is not negative, grouped by ``part_of(rows)`` (a number
    below `parts`), each group in row order. With more than one part the rows are written
    to a file per part under `scratch` (the system's temporary folder if None) and read
    back one part at a time, so no array the size of the table is ever held."""

    def block(start: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(start, min(n, start + PARTITION_ROWS), dtype=np.int64)
        if labels is not None:
            rows = rows[np.asarray(labels[rows]) >= 0]
        return rows, np.asarray(part_of(rows), dtype=np.int64)

    if parts == 1:
        yield np.concatenate([block(start)[0] for start in range(0, n, PARTITION_ROWS)]
                             or [np.zeros(0, np.int64)])
        return
    with tempfile.TemporaryDirectory(prefix="tpru-links-", dir=scratch) as tmp, \
            ExitStack() as stack:
        paths = [Path(tmp) / str(p) for p in range(parts)]
        files = [stack.enter_context(path.open("wb")) for path in paths]
        for start in range(0, n, PARTITION_ROWS):
            rows, part = block(start)
            order = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[order], np.arange(parts + 1))
            for p in range(parts):
                files[p].write(rows[order[bounds[p]:bounds[p + 1]]].tobytes())
        stack.close()
        for path in paths:
            yield np.fromfile(path, dtype=np.int64)


def _read(labels: _Labels, rows: np.ndarray) -> np.ndarray:
    """``labels[rows]``, a memory map read as `gather` reads it."""
    return gather(labels, rows) if isinstance(labels, np.ndarray) else np.asarray(labels[rows])


def _parts(n: int) -> int:
    return max(1, -(-n // PARTITION_ROWS))


def _near_duplicates(phashes: np.ndarray, thumbs: np.ndarray, max_hamming: int,
                     max_pixel_diff: float, labels: _Labels | None,
                     thumb_rows: np.ndarray | None, scratch: Path | None) -> list[np.ndarray]:
    """`near_duplicate_pairs` as (k, 2) arrays of rows (i < j), not yet made unique.

    Rows are compared only with rows whose chunk of the hash is equal, so each
    chunk's rows are split into partitions by that chunk's value and each
    partition is compared on its own: the same pairs, in bounded memory.
    Rows with a negative label take no part.
    """
    n = len(phashes)
    found: list[np.ndarray] = [np.zeros((0, 2), dtype=np.int64)]
    if n < 2:
        return found
    limit = np.float32(max_pixel_diff * 255.0 * thumbs.shape[1]) if thumbs.ndim == 2 else 0
    parts = _parts(n)
    for shift, mask in _chunks(64, max_hamming + 1):
        def chunk_of(rows: np.ndarray, shift: int = shift, mask: int = mask) -> np.ndarray:
            hashes = np.asarray(phashes[rows], dtype=np.uint64)
            return np.asarray((hashes >> np.uint64(shift)) & np.uint64(mask))

        for rows in _partitions(n, lambda r: chunk_of(r) % np.uint64(parts), parts, labels,
                                scratch):
            if len(rows) < 2:
                continue
            hashes = np.asarray(gather(phashes, rows), dtype=np.uint64)
            keys = (hashes >> np.uint64(shift)) & np.uint64(mask)  # chunk_of(rows)
            order = np.lexsort((hashes, keys))
            sorted_keys = keys[order]
            label = None if labels is None else _read(labels, rows)
            for k in range(1, min(BUCKET_WINDOW, len(rows) - 1) + 1):
                a, b = order[:-k], order[k:]
                near = (sorted_keys[:-k] == sorted_keys[k:]) & \
                    (np.bitwise_count(hashes[a] ^ hashes[b]) <= max_hamming)
                if label is not None:
                    near &= label[a] != label[b]
                if not near.any():
                    if not (sorted_keys[:-k] == sorted_keys[k:]).any():
                        break  # no bucket has more than k members
                    continue
                a, b = rows[a[near]], rows[b[near]]
                ta, tb = (a, b) if thumb_rows is None else (thumb_rows[a], thumb_rows[b])
                diff = np.abs(np.asarray(gather(thumbs, ta), dtype=np.int16) -
                              np.asarray(gather(thumbs, tb), dtype=np.int16)).sum(axis=1)
                a, b = a[diff <= limit], b[diff <= limit]
                found.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
            # Thumbnails read at random would leave the whole memory-mapped file mapped.
            release(phashes, thumbs)
    return found


def _unique_pairs(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The distinct rows of (k, 2) arrays of row numbers, sorted; one int64 key per pair,
    as sorting one column is many times faster than ``np.unique(axis=0)``."""
    pairs = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in parts])
    keys = np.unique((pairs[:, 0] << 32) | pairs[:, 1])
    return np.stack([keys >> 32, keys & 0xFFFFFFFF], axis=1)


def frame_links(labels: _Labels, digests: np.ndarray, phashes: np.ndarray,
                thumbs: np.ndarray, rule: JoinRule, *,
                thumb_rows: np.ndarray | None = None,
                scratch: Path | None = None) -> np.ndarray:
    """(k, 2) rows i < j with different labels whose frames are identical or near-duplicates.

    Identical images (equal digests) are compared like a hash bucket, each
    with the next `BUCKET_WINDOW` rows of its digest, so a start screen that
    10,000 episodes share costs a linear number of pairs, not 50 million.
    Rows with a negative label take no part. The columns may be memory maps:
    beyond `PARTITION_ROWS` rows they are compared a partition at a time (by
    hash chunk, then by digest), the partitions' rows written under `scratch`.
    """
    found = _near_duplicates(phashes, thumbs, rule.max_hamming, rule.max_pixel_diff, labels,
                             thumb_rows, scratch)
    parts = _parts(len(digests))

    def part_of(rows: np.ndarray) -> np.ndarray:
        raw = np.frombuffer(np.asarray(digests[rows], dtype="S32").tobytes(), np.uint8)
        head = raw.reshape(-1, 32)[:, :8].copy().view("<u8").ravel()
        mixed = (head * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)  # hex spreads out
        return np.asarray(mixed % np.uint64(parts), dtype=np.int64)

    for rows in _partitions(len(digests), part_of, parts, labels, scratch):
        if len(rows) < 2:
            continue
        digest = gather(digests, rows)
        order = np.argsort(digest, kind="stable")
        ordered = digest[order]
        label = _read(labels, rows)
        for k in range(1, min(BUCKET_WINDOW, len(order) - 1) + 1):
            equal = ordered[:-k] == ordered[k:]
            if not equal.any():
                break
            a, b = order[:-k][equal], order[k:][equal]
            keep = label[a] != label[b]
            a, b = rows[a[keep]], rows[b[keep]]
            found.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
        release(digests)
    return _unique_pairs(found)


def distinct_images(digests: np.ndarray, path: Path, *, scratch: Path | None = None
                    ) -> np.ndarray:
    """``np.unique(digests)`` (the sorted distinct image hashes) written to `path` and
    memory-mapped. Beyond `PARTITION_ROWS` rows it is computed a partition at a time, the
    partitions cut between hash prefixes drawn from a sample of the rows, so that they
    come in sorted order and are about equally large."""
    n = len(digests)
    parts = _parts(n)

    def head(rows: np.ndarray) -> np.ndarray:
        """The first 8 bytes of each hash as a big-endian number: ordered as the hashes."""
        raw = np.frombuffer(np.asarray(gather(digests, rows), dtype="S32").tobytes(), np.uint8)
        return raw.reshape(-1, 32)[:, :8].copy().view(">u8").ravel()

    sample = np.sort(head(np.linspace(0, n - 1, min(n, PARTITION_ROWS)).astype(np.int64))) \
        if n else np.zeros(0, np.uint64)
    bounds = sample[np.arange(1, parts) * len(sample) // parts]

    def part_of(rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(bounds, head(rows), side="right")

    count = 0
    with path.open("wb") as out:
        for rows in _partitions(n, part_of, parts, None, scratch):
            distinct = np.unique(np.asarray(gather(digests, rows), dtype="S32"))
            out.write(distinct.tobytes())
            count += len(distinct)
            release(digests)
    if not count:
        return np.zeros(0, dtype="S32")
    return np.memmap(path, dtype="S32", mode="r", shape=(count,))


@dataclass(frozen=True)
class SplitPlan:
    """Which episodes a build joined and where it put them (see `plan_splits`)."""

    episode_ids: Sequence[str]
    scenarios: Sequence[str]
    ratios: dict[str, float]
    rule: JoinRule
    links: EpisodeLinks
    group_of: Sequence[int]
    split_of: list[str]


def plan_splits(frames: FrameTable, episode_ids: Sequence[str], scenarios: Sequence[str],
                ratios: Mapping[str, float], seed: int, rule: JoinRule, *,
                scratch: Path | None = None) -> SplitPlan:
    """Link the episodes' frames, join episodes by `rule`, and assign the groups to splits
    (`scratch`: where a large table's partitions go, see `frame_links`). The plan keeps
    `episode_ids` and `scenarios` as given (they may be columns in files, see
    `tpru.builder.episodes`) and the groups in an array, not a Python int each."""
    pairs = frame_links(frames.episode, frames.digest, frames.phash, frames.thumbs, rule,
                        scratch=scratch)
    links = link_episodes(frames.episode, pairs)
    group_of = array("q", group_episodes(links, len(episode_ids), rule.min_frames))
    split_of = assign_splits(group_of, episode_ids, ratios, seed, scenarios)
    return SplitPlan(episode_ids, scenarios, dict(ratios), rule, links, group_of, split_of)


@dataclass(frozen=True)
class SharedImages:
    """Written images that episodes the rule keeps apart share across splits.

    An image here is identical or a near-duplicate to one written in another
    split (a start screen every recording begins on): allowed, and reported.
    """

    images: int
    examples: list[str]


def check_leakage(split_episodes: Mapping[str, Collection[str]] | EpisodeUse,
                  split_images: Mapping[str, np.ndarray], images: np.ndarray,
                  frames: FrameTable, episode_ids: Sequence[str], rule: JoinRule, *,
                  scratch: Path | None = None) -> SharedImages:
    """Raise `LeakageError` on a leak between splits; return the images shared without one.

    A leak is an episode in two splits, an image in a split that is no frame
    of that split's episodes, or two episodes in different splits that `rule`
    joins (judged on all their kept frames, as the grouping did).

    Args:
        split_episodes: the episodes each split's samples use (their own and
            their distractors'): their ids, or an `EpisodeUse`.
        split_images: per split, a boolean mask over `images` (the sorted
            distinct digests of `frames`) that its samples use.
        frames: the kept frames; ``frames.episode`` indexes `episode_ids`.
            Thumbnails may be a memory map: they are read only where a pair is likely.
    """
    use = split_episodes if isinstance(split_episodes, EpisodeUse) else \
        EpisodeUse.of(split_episodes, episode_ids)
    problems: list[str] = []
    names = sorted(use.masks)
    label = np.full(len(episode_ids), -1, dtype=np.int16)
    for s, split in enumerate(names):
        for episode in sorted(use.unknown[split]):
            problems.append(f"episode {episode} in {split} is not one of the build's")
        mask = use.masks[split]
        for e in np.flatnonzero(mask & (label >= 0)).tolist():
            problems.append(f"episode {episode_ids[e]} is in both {names[label[e]]} and {split}")
        label[mask & (label < 0)] = s
    own = {split: np.zeros(len(images), dtype=bool) for split in names}
    for start in range(0, len(frames.episode), PARTITION_ROWS):  # the table, a block at a time
        block = slice(start, start + PARTITION_ROWS)
        row_label = label[np.asarray(frames.episode[block])]
        image_of = np.searchsorted(images, np.asarray(frames.digest[block]))
        for s, split in enumerate(names):
            own[split][image_of[row_label == s]] = True
        release(frames.episode, frames.digest, images)
    for split in names:
        for i in np.flatnonzero(split_images[split] & ~own[split])[:5].tolist():
            problems.append(f"image {images[i].decode()} is in {split} but is no frame of "
                            "its episodes")
    pairs = frame_links(_SplitOfRow(label, frames.episode), frames.digest, frames.phash,
                        frames.thumbs, rule, scratch=scratch)
    links = link_episodes(frames.episode, pairs)
    joined = links.joined(rule.min_frames)
    for a, b, n in zip(links.first[joined][:10].tolist(), links.second[joined][:10].tolist(),
                       links.shared[joined][:10].tolist(), strict=True):
        problems.append(f"episodes {episode_ids[a]} ({names[label[a]]}) and {episode_ids[b]} "
                        f"({names[label[b]]}) share {n} identical or near-duplicate frames "
                        f"(split.join_min_frames {rule.min_frames})")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise LeakageError("leakage between splits: " + "; ".join(problems[:5]) + more)
    return _shared_images(pairs, split_images, images, frames, names, label, episode_ids)


class _SplitOfRow:
    """Each frame row's split number (`check_leakage`'s label of its episode), read for the
    rows asked only."""

    def __init__(self, label: np.ndarray, frame_episode: np.ndarray) -> None:
        self.label, self.frame_episode = label, frame_episode

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.label[gather(self.frame_episode, rows)])


def _shared_images(pairs: np.ndarray, split_images: Mapping[str, np.ndarray],
                   images: np.ndarray, frames: FrameTable, names: Sequence[str],
                   label: np.ndarray, episode_ids: Sequence[str]) -> SharedImages:
    """The cross-split frame `pairs` whose images were both written, each in its split."""
    if not len(pairs):
        return SharedImages(0, [])
    episode = np.asarray(frames.episode[pairs.ravel()]).reshape(pairs.shape)
    image = np.searchsorted(images, np.asarray(frames.digest[pairs.ravel()])).reshape(
        pairs.shape)
    side = label[episode]
    used = np.ones(len(pairs), dtype=bool)
    for column in (0, 1):
        written = np.zeros(len(pairs), dtype=bool)
        for s, name in enumerate(names):
            at = side[:, column] == s
            written[at] = split_images[name][image[at, column]]
        used &= written
    examples = []
    for (a, b), (i, j) in zip(episode[used][:3].tolist(), image[used][:3].tolist(),
                              strict=True):
        where = (f"{names[label[a]]} (episode {episode_ids[a]}) and {names[label[b]]} "
                 f"(episode {episode_ids[b]})")
        examples.append(f"image {images[i].decode()} is in {where}" if i == j else f"images "
                        f"{images[i].decode()} and {images[j].decode()} are near-duplicates, "
                        f"in {where}")
    return SharedImages(len(np.unique(image[used])), examples)
