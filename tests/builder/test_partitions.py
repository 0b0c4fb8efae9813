"""Pass 2's formulation by partition (split and scenario) on the engine's workers.

The state that carries from one episode to the next (letter blocks, turns of
the ordering forms) is kept per partition (split, scenario and chunk of
episodes), so groups of partitions formulated apart, in other processes, give
the bytes one process gives: with 1, 2 or 3 local workers, with one scenario
split by chunks, and with the model stages' notes and the pool of
descriptions read from the work folder by the workers.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rule_model import RuleModel, write_recordings

import tpru.builder.partitions as partitions
import tpru.builder.pipeline as pipeline
from helpers import folder_bytes
from tpru.builder.config import BuildConfig
from tpru.builder.partitions import deal
from tpru.config import load
from tpru.models.serve import serve
from tpru.sources.synthetic import write_synthetic_episodes


@pytest.mark.parametrize("seed", range(20))
def test_deal_gives_each_partition_to_one_group_with_loads_balanced(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randrange(1, 200)
    split_of = [rng.choice(["train", "val", "test"]) for _ in range(n)]
    scenarios = [f"s{rng.randrange(rng.randrange(1, 12))}" for _ in range(n)]
    frames = [rng.randrange(1, 40) for _ in range(n)]
    wanted = rng.randrange(1, 10)
    keys = [(split, scenario, rng.randrange(3)) for split, scenario in zip(split_of, scenarios,
                                                                            strict=True)]
    groups = deal(keys, frames, groups=wanted)
    totals: Counter[tuple[str, str, int]] = Counter()
    for key, count in zip(keys, frames, strict=True):
        totals[key] += count
    dealt = [key for group in groups for key in group.partitions]
    assert sorted(dealt) == sorted(totals)  # each partition once
    assert len(groups) == min(wanted, len(totals))
    assert [g.number for g in groups] == list(range(len(groups)))
    loads = [sum(totals[key] for key in group.partitions) for group in groups]
    # Greedy to the lightest: no group exceeds another by more than its largest partition.
    for group, weight in zip(groups, loads, strict=True):
        assert weight - min(loads) <= max(totals[key] for key in group.partitions)
    assert deal(keys, frames, groups=wanted) == groups


def _build(data: dict[str, Any]) -> None:
    pipeline.build(load(BuildConfig, data), overwrite=True, show_progress=False)


class _GroupsSeen:
    """Records how many groups each build dealt and whether it merged workers' files."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dealt: list[int] = []
        self.merged = 0
        deal_, merged_ = partitions.deal, partitions.merged

        def dealing(*args: Any, **kwargs: Any) -> Any:
            groups = deal_(*args, **kwargs)
            self.dealt.append(len(groups))
            return groups

        def merging(*args: Any, **kwargs: Any) -> Any:
            self.merged += 1
            return merged_(*args, **kwargs)

        monkeypatch.setattr(partitions, "deal", dealing)
        monkeypatch.setattr(partitions, "merged", merging)


def test_workers_formulate_the_bytes_one_process_formulates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_synthetic_episodes(tmp_path / "episodes", episodes=10, frames=9, seed=4)
    seen = _GroupsSeen(monkeypatch)
    for workers in (1, 2, 3):
        _build({"sources": [f"frames:{tmp_path / 'episodes'}"],
                "out": str(tmp_path / f"w{workers}"), "workers": workers,
                "split": {"ratios": {"train": 0.6, "val": 0.2, "test": 0.2}},
                "tasks": {"frames_per_sample": {3: 1, 5: 1}, "negative_rate": 0.5}})
    # Four scenarios in three splits: 12 partitions, 4 groups a CPU; one worker deals none.
    assert seen.dealt == [8, 12] and seen.merged == 2
    one = folder_bytes(tmp_path / "w1")
    assert sum(name.endswith(".jsonl") for name in one) == 3
    assert folder_bytes(tmp_path / "w2") == one
    assert folder_bytes(tmp_path / "w3") == one
    assert not (tmp_path / "w2.partial").exists()


def test_a_group_formulated_twice_writes_the_same_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a task retried after its node was lost: each group's file written again, whole
    (a temporary name, then a rename), and the dataset the same."""
    from retried_groups import formulate_twice

    write_synthetic_episodes(tmp_path / "episodes", episodes=6, frames=7, seed=5)
    data = {"sources": [f"frames:{tmp_path / 'episodes'}"],
            "split": {"ratios": {"train": 0.5, "test": 0.5}}}
    _build({**data, "out": str(tmp_path / "once"), "workers": 2})
    monkeypatch.setattr(partitions, "formulate_groups", formulate_twice)
    seen = _GroupsSeen(monkeypatch)
    _build({**data, "out": str(tmp_path / "twice"), "workers": 2})
    assert seen.merged == 1
    assert folder_bytes(tmp_path / "twice") == folder_bytes(tmp_path / "once")


def test_one_scenario_spreads_over_the_workers_by_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A robot dataset's episodes are all of one scenario: its chunks of episodes (3 here,
    512 by default) are the partitions."""
    write_synthetic_episodes(tmp_path / "episodes", episodes=24, frames=7, seed=2,
                             scenarios=("lego",))
    monkeypatch.setattr(pipeline, "CHUNK_EPISODES", 3)
    seen = _GroupsSeen(monkeypatch)
    for workers in (1, 2, 3):
        _build({"sources": [f"frames:{tmp_path / 'episodes'}"],
                "out": str(tmp_path / f"w{workers}"), "workers": workers,
                "split": {"ratios": {"train": 0.75, "test": 0.25}}})
    # Two splits of one scenario, but 8 groups for 2 workers: at least 8 partitions, the
    # chunks of 3 episodes.
    assert seen.dealt[0] == 8 and seen.merged == 2
    one = folder_bytes(tmp_path / "w1")
    assert folder_bytes(tmp_path / "w2") == one
    assert folder_bytes(tmp_path / "w3") == one
    samples = [json.loads(line) for name, data in one.items() if name.endswith(".jsonl")
               for line in data.decode().splitlines()]
    forms = Counter(s["meta"].get("form") for s in samples if s["task"] == "ordering")
    assert forms["options"] > 0 and forms["letters"] > 0


def test_workers_read_the_notes_and_descriptions_from_the_work_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model stage, and windows as long as their episodes: a ``missing`` negative
    has no frame of its own to stand in for the truth and is asked as ``mismatch``."""
    write_recordings(tmp_path / "recordings")
    seen = _GroupsSeen(monkeypatch)
    with serve(RuleModel(), model_name="rule") as server:
        for workers in (1, 2):
            _build({"sources": [f"frames:{tmp_path / 'recordings'}"],
                    "out": str(tmp_path / f"w{workers}"), "workers": workers,
                    "split": {"ratios": {"train": 0.5, "test": 0.5}},
                    "model": {"name": "openai:rule", "cache": str(tmp_path / "cache"),
                              "batch_size": 4, "options": {"base_url": server.url}},
                    "judge": {"enabled": True},
                    "describe": {"mode": "always", "paraphrases": 2},
                    "tasks": {"frames_per_sample": 6, "negative_rate": 0.7,
                              "negative_kinds": ["missing", "mismatch"]},
                    "text": {"paraphrase_rate": 0.5}})
    assert seen.merged == 1
    one = folder_bytes(tmp_path / "w1")
    assert folder_bytes(tmp_path / "w2") == one
    info = json.loads(one["build.json"])
    assert info["counts"]["missing_asked_as_mismatch"] > 0
    samples = [json.loads(line) for name, data in one.items() if name.endswith(".jsonl")
               for line in data.decode().splitlines()]
    assert any(s["meta"].get("description_paraphrase") is not None for s in samples)
    # A mismatch negative shows another episode's description: no paraphrase of its own
    # (one drawn for the missing negative it was first would be stale).
    mismatch = [s for s in samples if s["meta"].get("negative_kind") == "mismatch"]
    assert mismatch
    assert all("description_paraphrase" not in s["meta"] for s in mismatch)
