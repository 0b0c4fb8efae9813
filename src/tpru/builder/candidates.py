"""Distractors: frames that look like the truth but are not it.

A choice question needs image candidates besides the true frame. They come
from the sample's own episode (other frames of the same process; at most
``same_episode_distractors``), then from the nearest neighbours of the true
frame by image embedding among other episodes of the same scenario and split
(one frame per other episode, so the candidates are varied). A candidate that
is near-identical to the truth or a near-duplicate of another candidate is
never used: it would make the question ambiguous. A negative whose truth is
left out has one more frame of its own episode instead, so that where the
candidates come from does not tell a negative from a positive.

`NeighbourIndex` uses faiss when it is installed (an exact inner-product
index, or HNSW beyond ``HNSW_FROM`` frames, so a million frames stay fast),
and plain numpy otherwise. A build keeps its exact indexes on disk
(`NeighbourIndex.on_disk`), mapped into memory only while searched, so the
driver's memory does not grow with the number of frames.
"""

from __future__ import annotations

import logging
import mmap
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tpru.builder.images import hamming, thumb_diff
from tpru.dataset import IMAGES_DIR

log = logging.getLogger("tpru")

HNSW_FROM = 50_000
"""Indexes over more frames than this use HNSW (approximate) instead of an exact search."""


class NeighbourIndex:
    """Nearest neighbours by cosine similarity over a subset of frame rows."""

    def __init__(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        self.rows = rows
        self._vectors: np.ndarray | None = np.ascontiguousarray(vectors, dtype=np.float32)
        self._faiss = None
        self._path: Path | None = None
        """Where an on-disk index's vectors and rows are (`on_disk`)."""
        self._size = len(rows)
        try:
            import faiss
        except ImportError:
            return
        dim = self._vectors.shape[1]
        index: faiss.Index
        if len(rows) > HNSW_FROM:
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = 128
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)  # a parallel build is not reproducible
            index.add(self._vectors)
            faiss.omp_set_num_threads(threads)
        else:
            index = faiss.IndexFlatIP(dim)
            index.add(self._vectors)
        self._faiss = index
        self._vectors = None  # faiss keeps its own copy

    @classmethod
    def on_disk(cls, path: Path, embeddings: np.ndarray, ranges: Sequence[range]
                ) -> NeighbourIndex:
        """An exact index over the frame rows in `ranges`, its vectors and rows written to
        `path` (``.f32``) and beside it (``.rows``) and memory-mapped by each search for
        that search only: at most ``HNSW_FROM`` vectors are mapped at a time, whatever the
        number of frames. Its results are the in-memory index's (the
        same faiss search over the same vectors). `embeddings` may be a memory map: it is
        read one range at a time. Beyond ``HNSW_FROM`` frames the index is HNSW, in
        memory, as before."""
        size = sum(len(r) for r in ranges)
        if size > HNSW_FROM or size == 0:
            rows = np.concatenate([np.arange(r.start, r.stop) for r in ranges]) if ranges \
                else np.zeros(0, np.int64)
            return cls(embeddings[rows], rows.astype(np.int64))
        with path.with_suffix(".f32").open("wb") as vectors, \
                path.with_suffix(".rows").open("wb") as rows_file:
            for r in ranges:
                vectors.write(np.ascontiguousarray(embeddings[r.start:r.stop],
                                                   dtype=np.float32).tobytes())
                rows_file.write(np.arange(r.start, r.stop, dtype=np.int64).tobytes())
                release(embeddings)  # the ranges are spread over the whole file
        index = cls.__new__(cls)
        index.rows, index._vectors, index._faiss = np.zeros(0, np.int64), None, None
        index._path, index._size = path, size
        return index

    def __len__(self) -> int:
        return self._size

    def search(self, query: np.ndarray, k: int) -> list[int]:
        """Frame rows of the `k` nearest neighbours of `query`, nearest first."""
        k = min(k, len(self))
        if k <= 0:
            return []
        if self._path is not None:
            return self._search_file(self._path, query, k)
        if self._faiss is not None:
            _, found = self._faiss.search(query.reshape(1, -1).astype(np.float32), k)
            return [int(self.rows[i]) for i in found[0] if i >= 0]
        assert self._vectors is not None
        return _search_numpy(self._vectors, self.rows, query, k)

    def _search_file(self, path: Path, query: np.ndarray, k: int) -> list[int]:
        """`search` over the vectors on disk, mapped for this search only (so neither the
        memory nor the open files grow with the number of indexes)."""
        with path.with_suffix(".f32").open("rb") as vectors_file, \
                path.with_suffix(".rows").open("rb") as rows_file, \
                mmap.mmap(vectors_file.fileno(), 0, access=mmap.ACCESS_READ) as vectors_map, \
                mmap.mmap(rows_file.fileno(), 0, access=mmap.ACCESS_READ) as rows_map:
            vectors = np.frombuffer(vectors_map, np.float32).reshape(self._size, -1)
            rows = np.frombuffer(rows_map, np.int64)
            try:
                import faiss
            except ImportError:
                found = _search_numpy(vectors, rows, query, k)
            else:
                _, top = faiss.knn(query.reshape(1, -1).astype(np.float32), vectors, k,
                                   metric=faiss.METRIC_INNER_PRODUCT)
                found = [int(rows[i]) for i in top[0] if i >= 0]
            del vectors, rows  # before their maps close
        return found


def _search_numpy(vectors: np.ndarray, rows: np.ndarray, query: np.ndarray, k: int
                  ) -> list[int]:
    scores = vectors @ query.astype(np.float32)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.lexsort((top, -scores[top]))]
    return [int(rows[i]) for i in top]


def release(*arrays: np.ndarray) -> None:
    """Drop the pages of memory-mapped `arrays` (`numpy.memmap`) from this process's
    memory; other arrays are left as they are."""
    for array in arrays:
        mapped = getattr(array, "_mmap", None)
        if mapped is not None:
            mapped.madvise(mmap.MADV_DONTNEED)


GATHER_SPAN = 1 << 20
"""`gather` reads a memory map this many bytes of it at a time."""


def gather(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]``; from a memory map (`numpy.memmap`), read one `GATHER_SPAN` of the
    file at a time and its pages let go after each (`release`).

    Rows read at random through a map in one go would leave the whole file mapped:
    besides the pages read, each page fault maps the cached pages around it.
    """
    if getattr(array, "_mmap", None) is None:
        return np.asarray(array[rows])
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    width = array.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))
    per = max(1, GATHER_SPAN // max(1, width))
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    start = 0
    while start < len(ordered):
        stop = int(np.searchsorted(ordered, ordered[start] + per))
        out[order[start:stop]] = array[ordered[start:stop]]
        release(array)
        start = stop
    return out


@dataclass
class FrameTable:
    """Per-frame arrays of the kept frames of every kept episode (row = frame)."""

    episode: np.ndarray
    """(n,) int32 episode index of each frame."""
    position: np.ndarray
    """(n,) int32 index of the frame in its source episode."""
    phash: np.ndarray
    """(n,) uint64 perceptual hashes."""
    thumbs: np.ndarray
    """(n, 256) uint8 grey thumbnails."""
    embeddings: np.ndarray
    """(n, d) float32 unit vectors."""
    digest: np.ndarray
    """(n,) S32 content hash of each frame's stored image."""
    ext: np.ndarray
    """(n,) S4 file extension of each frame's stored image."""

    def release(self) -> None:
        """Drop the pages of the memory-mapped columns from this process's memory (they
        stay in the page cache, and come back when read): rows read at random would
        otherwise leave every page mapped, and the process as large as the files."""
        release(self.episode, self.position, self.phash, self.thumbs, self.embeddings,
                self.digest, self.ext)

    def image(self, row: int) -> str:
        """The path of a frame's image inside the dataset."""
        digest = self.digest[row].decode()
        return f"{IMAGES_DIR}/{digest[:2]}/{digest}.{self.ext[row].decode()}"

    def near_duplicate(self, a: int, b: int, max_hamming: int, max_pixel_diff: float) -> bool:
        return hamming(int(self.phash[a]), int(self.phash[b])) <= max_hamming and \
            thumb_diff(self.thumbs[a], self.thumbs[b]) <= max_pixel_diff


@dataclass(frozen=True)
class DistractorPolicy:
    same_episode: int
    max_hamming: int
    max_pixel_diff: float


def pick_distractors(table: FrameTable, truth: int, window: Sequence[int],
                     episode_rows: Sequence[int], index: NeighbourIndex | None, needed: int,
                     policy: DistractorPolicy, rng: random.Random, *,
                     missing: bool = False) -> list[int] | None:
    """Rows of `needed` distractors for the true frame `truth`, or None if too few exist.

    A ``missing`` negative (`missing`, the truth left out) replaces the truth by
    one more frame of its own episode, a wrong step that is as plausible by look,
    so its candidates come from the own and other episodes in the same numbers as
    a positive's (the truth counted as an own-episode candidate): the number of
    own-episode candidates is ``min(same_episode + 1, usable own frames)`` either
    way, and the number from other episodes follows. A frame whose perceptual
    hash is within ``max_hamming`` bits of the truth's (a near-identical picture,
    whatever its colours) or that is a near-duplicate of another candidate is
    never used.

    Args:
        window: the sample's rows in order, the truth among them; the others
            are shown in the question (and used as distractors only when
            nothing else is left).
        episode_rows: all kept rows of the truth's episode, in frame order.
        index: neighbours among the same scenario and split.
        missing: the truth is left out of the candidates (needs one more
            distractor, `needed` counts it).
    """
    chosen: list[int] = []

    def usable(row: int) -> bool:
        if row == truth or row in chosen:
            return False
        if hamming(int(table.phash[row]), int(table.phash[truth])) <= policy.max_hamming:
            return False
        return not any(table.near_duplicate(row, other, policy.max_hamming,
                                            policy.max_pixel_diff) for other in chosen)

    # A frame of the own episode between the truth's shown neighbours would answer the
    # question as well as the truth (any frame before step 2 is "a step 1"): never offer it.
    at = list(window).index(truth)
    low = window[at - 1] if at > 0 else -1
    high = window[at + 1] if at + 1 < len(window) else len(table.episode)
    own = [r for r in episode_rows if r not in window and not low < r < high]
    rng.shuffle(own)
    own_usable: list[int] = []
    for row in own:
        if len(own_usable) > policy.same_episode:
            break
        if usable(row) and not any(table.near_duplicate(row, other, policy.max_hamming,
                                                        policy.max_pixel_diff)
                                   for other in own_usable):
            own_usable.append(row)
    # Own-episode candidates, the truth included: min(same_episode + 1, usable own frames).
    own_total = min(policy.same_episode + 1, len(own_usable))
    if missing and own_total == 0:
        return None  # nothing of this episode can stand in for the truth
    take = own_total if missing else max(own_total - 1, 0)
    chosen.extend(own_usable[:min(take, needed)])
    if index is not None and len(chosen) < needed:
        own_episode = int(table.episode[truth])
        used_episodes = {own_episode}
        for row in index.search(table.embeddings[truth], 8 * needed + 16):
            if len(chosen) >= needed:
                break
            episode = int(table.episode[row])
            if episode in used_episodes or not usable(row):
                continue
            used_episodes.add(episode)
            chosen.append(row)
    # Not enough neighbours: more frames of the own episode, then the window's.
    shown = [r for r in window if r != truth]
    rng.shuffle(shown)
    for row in [*own, *shown]:
        if len(chosen) >= needed:
            break
        if usable(row):
            chosen.append(row)
    if len(chosen) < needed:
        return None
    rng.shuffle(chosen)
    return chosen
