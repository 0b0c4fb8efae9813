"""Neighbour search (faiss exact, faiss HNSW, numpy) and distractor picking."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

import tpru.build.candidates as candidates
from tpru.build.candidates import DistractorPolicy, FrameTable, NeighbourIndex, pick_distractors
from tpru.build.embed import normalise_rows, resolve_embedding
from tpru.cli import main
from tpru.diagnostics import InputError


def vectors(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    return normalise_rows(np.random.default_rng(seed).normal(size=(n, d)))


def test_faiss_and_numpy_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faiss")
    v = vectors(300)
    rows = np.arange(1000, 1300)
    with_faiss = NeighbourIndex(v, rows)
    import builtins

    real_import = builtins.__import__

    def no_faiss(name: str, *args: object, **kwargs: object) -> object:
        if name == "faiss":
            raise ImportError("no faiss")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    plain = NeighbourIndex(v, rows)
    for q in range(0, 300, 37):
        assert with_faiss.search(v[q], 5) == plain.search(v[q], 5)
        assert with_faiss.search(v[q], 5)[0] == 1000 + q


def test_hnsw_beyond_the_threshold_is_reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faiss")
    monkeypatch.setattr(candidates, "HNSW_FROM", 100)
    v = vectors(2000, seed=1)
    rows = np.arange(2000)
    a, b = NeighbourIndex(v, rows), NeighbourIndex(v, rows)
    hits = 0
    for q in range(0, 2000, 97):
        found = a.search(v[q], 10)
        assert found == b.search(v[q], 10)
        hits += found[0] == q
    assert hits >= 19  # approximate, but finds the query itself nearly always


def table(n_episodes: int, per: int) -> FrameTable:
    n = n_episodes * per
    rng = np.random.default_rng(0)
    return FrameTable(
        episode=np.repeat(np.arange(n_episodes, dtype=np.int32), per),
        position=np.tile(np.arange(per, dtype=np.int32), n_episodes),
        phash=rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64),
        thumbs=rng.integers(0, 255, (n, 256), dtype=np.uint8),
        embeddings=vectors(n, seed=2),
        digest=np.array([f"{i:032x}".encode() for i in range(n)], dtype="S32"),
        ext=np.array([b"jpg"] * n, dtype="S4"))


def test_distractors_mix_own_episode_and_neighbours_without_duplicates() -> None:
    t = table(6, 8)
    index = NeighbourIndex(t.embeddings, np.arange(48))
    policy = DistractorPolicy(same_episode=1, max_hamming=4, max_pixel_diff=0.01)
    window = [0, 2, 5, 7]
    chosen = pick_distractors(t, 5, window, list(range(8)), index, 3, policy, random.Random(0))
    assert chosen is not None and len(set(chosen)) == 3
    episodes = [int(t.episode[r]) for r in chosen]
    assert episodes.count(0) == 1 and len(set(episodes)) == 3
    # The own-episode pick never lies between the shown neighbours of the truth (2 and 7).
    own = next(r for r in chosen if t.episode[r] == 0)
    assert not 2 < own < 7
    # A near-duplicate of the truth is never a candidate.
    t.phash[8:] = t.phash[5]
    t.thumbs[8:] = t.thumbs[5]
    chosen = pick_distractors(t, 5, window, list(range(8)), index, 3, policy, random.Random(0))
    assert chosen is None or all(t.episode[r] == 0 for r in chosen)


def test_custom_embedding_by_name(tmp_path: Path, episodes_dir: Path) -> None:
    fn = resolve_embedding("custom_embedding:histogram")
    assert fn is not None
    for bad in ("nosuchmodule:fn", "custom_embedding:absent", "nocolon"):
        with pytest.raises(InputError):
            resolve_embedding(bad)
    out = tmp_path / "ds"
    assert main(["build", "--source", f"frames:{episodes_dir}", "--out", str(out), "-q",
                 "embed.name=custom_embedding:histogram"]) == 0
    info = json.loads((out / "build.json").read_text())
    assert info["config"]["embed"]["name"] == "custom_embedding:histogram"
    assert info["counts"]["samples_total"] > 0
