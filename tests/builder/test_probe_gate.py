"""The build measures its shortcuts: probes in build.json, and a leaking build fails."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import tpru.builder.tasks
from tpru.cli import main
from tpru.sources.synthetic import write_synthetic_episodes

ORDERING_ONLY = ["tasks.tasks=[ordering]", "tasks.ordering_forms=[options]",
                 "tasks.windows_per_episode=6"]


def _around_the_truth(truth: tuple[int, ...], k: int, *, include_truth: bool,
                      rng: random.Random) -> list[tuple[int, ...]]:
    """The shortcut on purpose: wrong orders one adjacent swap from the truth."""
    near = []
    for i in range(len(truth) - 1):
        swapped = list(truth)
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
        near.append(tuple(swapped))
    rng.shuffle(near)
    chosen = ([truth] if include_truth else []) + near[: k - include_truth]
    while len(chosen) < k:
        far = list(truth)
        rng.shuffle(far)
        if tuple(far) not in chosen and tuple(far) != truth:
            chosen.append(tuple(far))
    return chosen


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate") / "episodes"
    write_synthetic_episodes(root, episodes=24, frames=8, seed=3, size=(96, 72))
    return root


def test_a_leaking_build_fails_naming_the_probe_and_resumes_to_write_it(
        episodes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(tpru.builder.tasks, "order_options", _around_the_truth)
    out = tmp_path / "data"
    args = ["build", "-q", "--source", f"frames:{episodes}", "--out", str(out),
            *ORDERING_ONLY]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "shortcut probes: ordering: transposition_centre answers" in err
    assert "against" in err and "by chance" in err and "probes.max_lift=null" in err
    # The wording every message about an unfinished build shares, said once.
    assert err.count(f"the unfinished build is kept in {tmp_path / 'data.partial'}; ") == 1
    assert not out.exists() and (tmp_path / "data.partial" / "train.jsonl").is_file()

    assert main([*args, "--resume", "probes.max_lift=null"]) == 0
    probes = json.loads((out / "build.json").read_text())["probes"]
    assert probes["max_lift"] is None and probes["leaks"] == []
    centre = probes["tasks"]["ordering"]["probes"]["transposition_centre"]
    assert centre["accuracy"] > 0.3 and not centre["within"]


def test_the_same_build_without_the_shortcut_passes(episodes: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert main(["build", "-q", "--source", f"frames:{episodes}", "--out", str(out),
                 *ORDERING_ONLY]) == 0
    probes = json.loads((out / "build.json").read_text())["probes"]
    ordering = probes["tasks"]["ordering"]
    assert ordering["n"] >= 100 and probes["leaks"] == []
    assert all(p["within"] for p in ordering["probes"].values()), ordering
