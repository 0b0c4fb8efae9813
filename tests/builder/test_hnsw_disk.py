"""The HNSW neighbour index on disk: built in a child process, memory-mapped by the
searches, and finding exactly what the HNSW index built in memory finds."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from episode_files import write_episodes
from hidden_imports import hide_module

import tpru.builder.candidates as candidates
from helpers import folder_bytes
from tpru.builder.candidates import NeighbourIndex
from tpru.builder.embed import normalise_rows
from tpru.cli import main

faiss = pytest.importorskip("faiss")


def _shard(tmp_path: Path, n: int = 4000, dim: int = 32, seed: int = 0
           ) -> tuple[np.ndarray, np.ndarray, list[range]]:
    """A memory-mapped embeddings file and a shard of its rows in three ranges."""
    table = normalise_rows(np.random.default_rng(seed).normal(size=(n, dim)))
    mapped = np.lib.format.open_memmap(tmp_path / "emb.npy", "w+", np.float32, table.shape)
    mapped[:] = table
    ranges = [range(0, 1200), range(1500, 2600), range(2900, 3900)]
    return mapped, np.concatenate([np.arange(r.start, r.stop) for r in ranges]), ranges


def test_the_hnsw_index_on_disk_finds_exactly_what_the_one_in_memory_finds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(candidates, "HNSW_FROM", 100)
    table, rows, ranges = _shard(tmp_path)
    in_memory = NeighbourIndex(table[rows], rows.astype(np.int64))
    assert isinstance(in_memory._faiss, faiss.IndexHNSWFlat)
    on_disk = NeighbourIndex.on_disk(tmp_path / "shard", table, ranges)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npy", "shard.hnsw",
                                                          "shard.rows"]
    assert len(on_disk) == len(in_memory) == len(rows)
    rng = np.random.default_rng(1)
    approximate = 0
    for q in range(0, 4000, 13):
        k = int(rng.integers(1, 200))
        found = on_disk.search(table[q], k)
        assert found == in_memory.search(table[q], k)
        _, exact = faiss.knn(table[q][None], table[rows], k, metric=faiss.METRIC_INNER_PRODUCT)
        approximate += found != rows[exact[0]].tolist()
    assert approximate > 0  # HNSW, not an exact search, is what was compared
    assert isinstance(on_disk._opened[0], faiss.IndexHNSWFlat)  # type: ignore[index]


def test_the_hnsw_file_is_the_same_each_time_and_the_index_pickles(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(candidates, "HNSW_FROM", 100)
    table, _, ranges = _shard(tmp_path, seed=2)
    a = NeighbourIndex.on_disk(tmp_path / "a", table, ranges)
    NeighbourIndex.on_disk(tmp_path / "b", table, ranges)
    assert (tmp_path / "a.hnsw").read_bytes() == (tmp_path / "b.hnsw").read_bytes()
    before = [a.search(table[q], 20) for q in range(0, 4000, 97)]
    copy = pickle.loads(pickle.dumps(a))  # with its index open: it is opened again
    assert a._opened is not None and copy._opened is None
    assert [copy.search(table[q], 20) for q in range(0, 4000, 97)] == before


def test_a_failed_build_names_the_index_file_and_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(candidates, "HNSW_FROM", 100)
    table, _, ranges = _shard(tmp_path, n=4000)
    (tmp_path / "shard.hnsw").mkdir()  # the child cannot put its file there
    with pytest.raises(OSError, match=r"shard\.hnsw: could not build the HNSW neighbour "
                                      r"index of 3300 frames in a child process: "
                                      r"IsADirectoryError: "):
        NeighbourIndex.on_disk(tmp_path / "shard", table, ranges)
    assert not (tmp_path / "shard.hnsw.partial").exists()


def test_without_faiss_a_large_index_stays_in_memory_with_numpy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(candidates, "HNSW_FROM", 100)
    table, rows, ranges = _shard(tmp_path, n=4000)
    hide_module(monkeypatch, "faiss")
    index = NeighbourIndex.on_disk(tmp_path / "shard", table, ranges)
    assert index._path is None and not list(tmp_path.glob("shard*"))
    _, exact = faiss.knn(table[7][None], table[rows], 30, metric=faiss.METRIC_INNER_PRODUCT)
    assert index.search(table[7], 30) == rows[exact[0]].tolist()


def test_a_build_with_hnsw_indexes_on_disk_is_the_build_with_them_in_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    episodes = write_episodes(tmp_path / "episodes", 30, scenarios=("robot",))
    monkeypatch.setattr(candidates, "HNSW_FROM", 50)  # the train shard: about 160 frames
    built: list[int] = []
    real_build = candidates._build_hnsw_in_child

    def counted(path: Path, size: int, dim: int) -> None:
        built.append(size)
        real_build(path, size, dim)

    monkeypatch.setattr(candidates, "_build_hnsw_in_child", counted)
    argv = ["build", "-q", "--source", f"frames:{episodes}", "--out"]
    assert main([*argv, str(tmp_path / "disk"), "--workers", "2"]) == 0  # searched there
    assert built and all(size > 50 for size in built)

    def in_memory(cls: type[NeighbourIndex], path: Path, embeddings: np.ndarray,
                  ranges: list[range]) -> NeighbourIndex:
        rows = np.concatenate([np.arange(r.start, r.stop) for r in ranges])
        return cls(embeddings[rows], rows.astype(np.int64))

    monkeypatch.setattr(NeighbourIndex, "on_disk", classmethod(in_memory))
    assert main([*argv, str(tmp_path / "memory")]) == 0
    disk = folder_bytes(tmp_path / "disk")
    memory = folder_bytes(tmp_path / "memory")
    assert disk.keys() == memory.keys() and any(p.endswith(".jsonl") for p in disk)
    for name in disk:
        assert disk[name] == memory[name], name
