"""Neighbour search (faiss exact, faiss HNSW, numpy) and distractor picking."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hidden_imports import hide_module

import tpru.builder.candidates as candidates
from tpru.builder.candidates import DistractorPolicy, FrameTable, NeighbourIndex, pick_distractors
from tpru.builder.embed import normalise_rows, resolve_embedding
from tpru.cli import main
from tpru.diagnostics import InputError


def vectors(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    return normalise_rows(np.random.default_rng(seed).normal(size=(n, d)))


def test_faiss_and_numpy_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faiss")
    v = vectors(300)
    rows = np.arange(1000, 1300)
    with_faiss = NeighbourIndex(v, rows)
    hide_module(monkeypatch, "faiss")
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
    window = [0, 3, 4, 6]
    chosen = pick_distractors(t, 4, window, list(range(8)), index, 3, policy, random.Random(0))
    assert chosen is not None and len(set(chosen)) == 3
    episodes = [int(t.episode[r]) for r in chosen]
    assert episodes.count(0) == 1 and len(set(episodes)) == 3
    # The own-episode pick never lies between the shown neighbours of the truth (3 and 6).
    own = next(r for r in chosen if t.episode[r] == 0)
    assert not 3 < own < 6
    # A near-duplicate of the truth is never a candidate.
    t.phash[8:] = t.phash[4]
    t.thumbs[8:] = t.thumbs[4]
    chosen = pick_distractors(t, 4, window, list(range(8)), index, 3, policy, random.Random(0))
    assert chosen is None or all(t.episode[r] == 0 for r in chosen)


@pytest.mark.parametrize(("window", "own_total"), [([0, 3, 4, 6], 2), ([0, 2, 5, 7], 1)])
def test_a_missing_negative_shows_as_many_own_episode_candidates_as_a_positive(
        window: list[int], own_total: int) -> None:
    """The truth counts as an own-episode candidate of a positive; a missing negative puts
    one more own frame in its place, so provenance says nothing about the answer."""
    t = table(6, 8)
    index = NeighbourIndex(t.embeddings, np.arange(48))
    policy = DistractorPolicy(same_episode=1, max_hamming=4, max_pixel_diff=0.01)
    truth = window[2]
    for seed in range(5):
        positive = pick_distractors(t, truth, window, list(range(8)), index, 3, policy,
                                    random.Random(seed))
        missing = pick_distractors(t, truth, window, list(range(8)), index, 4, policy,
                                   random.Random(seed), missing=True)
        assert positive is not None and missing is not None
        own_positive = 1 + sum(1 for r in positive if t.episode[r] == 0)
        own_missing = sum(1 for r in missing if t.episode[r] == 0)
        assert own_positive == own_missing == own_total
        assert all(r not in window for r in missing)  # a wrong step, never a shown frame


def test_a_missing_negative_without_a_stand_in_is_refused() -> None:
    t = table(6, 8)
    index = NeighbourIndex(t.embeddings, np.arange(48))
    policy = DistractorPolicy(same_episode=1, max_hamming=4, max_pixel_diff=0.01)
    # Every own frame is shown or lies between the truth's neighbours: none can stand in.
    window = [0, 1, 2, 7]
    assert pick_distractors(t, 2, window, list(range(8)), index, 4, policy,
                            random.Random(0), missing=True) is None


def test_near_identical_frames_are_never_candidates_whatever_their_colour() -> None:
    t = table(6, 8)
    index = NeighbourIndex(t.embeddings, np.arange(48))
    policy = DistractorPolicy(same_episode=1, max_hamming=4, max_pixel_diff=0.01)
    # Episode 1's frames: the truth's hash (the same picture) in other colours.
    t.phash[8:16] = t.phash[4]
    t.thumbs[8:16] = 255 - t.thumbs[4]
    for missing, needed in ((False, 3), (True, 4)):
        chosen = pick_distractors(t, 4, [0, 3, 4, 6], list(range(8)), index, needed, policy,
                                  random.Random(0), missing=missing)
        assert chosen is not None and not any(8 <= r < 16 for r in chosen)


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
