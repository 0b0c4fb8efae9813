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
and plain numpy otherwise. A build keeps its indexes on disk
(`NeighbourIndex.on_disk`): an exact index's vectors are mapped into memory
only while searched; an HNSW index is built in a child process and written to
a file whose graph and vectors are memory-mapped, so the driver's own
(anonymous) memory does not grow with the number of frames.
"""

from __future__ import annotations

import logging
import mmap
import os
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tpru.builder.images import hamming, thumb_diff
from tpru.dataset import IMAGES_DIR

log = logging.getLogger("tpru")

HNSW_FROM = 50_000
"""Indexes over more frames than this use HNSW (approximate) instead of an exact search."""
HNSW_M = 32
"""Neighbours per node of the HNSW graph (faiss ``IndexHNSWFlat``'s ``M``)."""
HNSW_EF_SEARCH = 128
"""Candidates an HNSW search keeps (faiss ``efSearch``)."""


class NeighbourIndex:
    """Nearest neighbours by cosine similarity over a subset of frame rows."""

    def __init__(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        self.rows = rows
        self._vectors: np.ndarray | None = np.ascontiguousarray(vectors, dtype=np.float32)
        self._faiss = None
        self._path: Path | None = None
        """Where an on-disk index's vectors and rows are (`on_disk`)."""
        self._hnsw = False
        """An on-disk index is HNSW (``.hnsw``), not exact (``.f32``)."""
        self._opened: tuple[Any, np.ndarray] | None = None
        """The on-disk HNSW index and its rows, memory-mapped (`_search_hnsw`)."""
        self._size = len(rows)
        try:
            import faiss
        except ImportError:
            return
        dim = self._vectors.shape[1]
        index: faiss.Index
        if len(rows) > HNSW_FROM:
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = HNSW_EF_SEARCH
            with one_faiss_thread():  # a parallel build is not reproducible
                index.add(self._vectors)
        else:
            index = faiss.IndexFlatIP(dim)
            index.add(self._vectors)
        self._faiss = index
        self._vectors = None  # faiss keeps its own copy

    @classmethod
    def on_disk(cls, path: Path, embeddings: np.ndarray, ranges: Sequence[range]
                ) -> NeighbourIndex:
        """An index over the frame rows in `ranges` whose data are on disk, beside
        `path`; its results are the in-memory index's (`NeighbourIndex`) exactly.
        `embeddings` may be a memory map: it is read one range at a time.

        Up to ``HNSW_FROM`` frames the index is exact: its vectors and rows are written
        to ``.f32`` and ``.rows`` and memory-mapped by each search for that search only.
        Beyond that (with faiss installed) it is HNSW: a child process builds it from
        the ``.f32`` file (the same parameters and insertion order as in memory, on one
        thread) and writes it to ``.hnsw``; searches memory-map that file (graph and
        vectors), so the driver's anonymous memory does not grow with the frames. An
        HNSW graph is reproducible only for the same faiss version and CPU instruction
        set: the driver's machine builds it (a search elsewhere, on a worker with
        another faiss or instruction set, may rank near-ties otherwise). Without
        faiss, an index beyond ``HNSW_FROM`` frames is plain numpy in memory.

        Raises:
            OSError: the child process could not build the HNSW index (its file named).
        """
        size = sum(len(r) for r in ranges)
        hnsw = size > HNSW_FROM and _faiss_installed()
        if (size > HNSW_FROM and not hnsw) or size == 0:
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
        if hnsw:
            _build_hnsw_in_child(path, size, int(embeddings.shape[1]))
            path.with_suffix(".f32").unlink()  # the .hnsw file holds the vectors
        index = cls.__new__(cls)
        index.rows, index._vectors, index._faiss = np.zeros(0, np.int64), None, None
        index._path, index._size = path, size
        index._hnsw, index._opened = hnsw, None
        return index

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_opened"] = None  # an open faiss index is not pickled; it is opened again
        return state

    def __len__(self) -> int:
        return self._size

    def search(self, query: np.ndarray, k: int) -> list[int]:
        """Frame rows of the `k` nearest neighbours of `query`, nearest first."""
        k = min(k, len(self))
        if k <= 0:
            return []
        if self._path is not None:
            if self._hnsw:
                return self._search_hnsw(self._path, query, k)
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

    def _search_hnsw(self, path: Path, query: np.ndarray, k: int) -> list[int]:
        """`search` in the HNSW index on disk, memory-mapped (``.hnsw``, ``.rows``).

        The opened index is kept for the next search (opening takes milliseconds, a
        search a fraction of one). Its file's pages count in the process's RSS as file
        pages (``RssFile``: the page cache, shared and reclaimable), not anonymous
        memory; a search's visits are spread over the whole graph, so after a search or
        two most of the file is mapped, and opening it again now and then would not
        lower that.
        """
        if self._opened is None:
            import faiss

            opened: Any = faiss.read_index(str(path.with_suffix(".hnsw")),
                                           faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
            opened.hnsw.efSearch = HNSW_EF_SEARCH
            self._opened = (opened, np.memmap(path.with_suffix(".rows"), dtype=np.int64,
                                              mode="r"))
        index, rows = self._opened
        _, found = index.search(query.reshape(1, -1).astype(np.float32), k)
        return [int(rows[i]) for i in found[0] if i >= 0]


@contextmanager
def one_faiss_thread() -> Iterator[None]:
    """faiss on one OpenMP thread inside the block (nothing to do without faiss)."""
    try:
        import faiss
    except ImportError:
        yield
        return
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _faiss_installed() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _build_hnsw_in_child(path: Path, size: int, dim: int) -> None:
    """Build the HNSW index of the vectors in ``path.f32`` into ``path.hnsw`` in a child
    process, so that the graph and the vectors it copies never live in this one."""
    target = path.with_suffix(".hnsw")
    # A fresh interpreter, not multiprocessing: "spawn" would run the caller's unguarded
    # __main__ again, and "fork" copies a process whose OpenMP threads may hang the child.
    code = ("import sys\nfrom tpru.builder.candidates import build_hnsw_file\n"
            "build_hnsw_file(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])")
    done = subprocess.run(
        [sys.executable, "-c", code, str(path.with_suffix(".f32")), str(size), str(dim),
         str(target)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        why = (f"it was killed by signal {-done.returncode} (out of memory?)"
               if done.returncode < 0 else said[-1] if said
               else f"it exited with status {done.returncode}")
        raise OSError(f"{target}: could not build the HNSW neighbour index of {size} frames "
                      f"in a child process: {why}")


def build_hnsw_file(vectors: str | Path, size: int, dim: int, target: str | Path) -> None:
    """Write to `target` the HNSW index of the `size` x `dim` float32 vectors in the
    file `vectors`, added in their order on one thread: the index `NeighbourIndex`
    builds in memory over the same vectors. The file appears whole or not at all."""
    import faiss

    faiss.omp_set_num_threads(1)  # a parallel build is not reproducible
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = HNSW_EF_SEARCH
    # One add of every vector: faiss orders the insertions within an add, so adding in
    # parts would build another graph.
    index.add(np.memmap(vectors, dtype=np.float32, mode="r", shape=(size, dim)))
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    try:
        faiss.write_index(index, str(partial))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


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
