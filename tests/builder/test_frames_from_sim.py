"""tpru's own simulator output read back with ``frames:``: scenarios kept, no warnings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_pipeline import build, build_info, samples_by_split

import tpru.sources.sim as sim
from tpru.diagnostics import Skips
from tpru.sources.frames import FrameFolderSource
from tpru.sources.sim import SimSource


@pytest.fixture
def sim_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A sim cache folder as ``sim:robot`` and ``sim:nav`` leave it (8 episodes each)."""
    for name in ("robot", "nav"):
        monkeypatch.setitem(sim.SIMULATORS, name, f"fake_sim:{name}")
    out = tmp_path / "demo-out" / "frames"
    for name in ("robot", "nav"):
        list(SimSource(name, skips=Skips(), episodes=8, frames=5, size=(96, 80),
                       out=out).iter_episodes())
    return out


def test_a_sim_folder_reads_back_as_the_same_episodes(sim_out: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    skips = Skips()
    found = list(FrameFolderSource(sim_out, skips=skips).iter_episodes())
    assert not skips.counts and not skips.warning_counts
    rendered = [e for name in ("nav", "robot") for e in SimSource(
        name, skips=Skips(), episodes=8, frames=5, size=(96, 80), out=sim_out).iter_episodes()]
    assert [dataclasses.replace(e, source="sim") for e in found] == rendered
    assert {e.scenario for e in found} == {"robot", "nav"}
    assert found[0].id == "sim-nav-maze-000000"
    assert found[0].meta == {"engine": "fake", "simulator": "nav", "task": "maze", "seed": 0}


def test_building_from_a_sim_folder_keeps_scenarios_without_warnings(
        sim_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert build(out, f"frames:{sim_out}") == 0
    assert build_info(out)["warnings"] == []
    samples = [s for split in samples_by_split(out).values() for s in split]
    assert {s.scenario for s in samples} == {"robot", "nav"}
    # A description negative describes another process of the same scenario.
    assert any(s.negative and "process of" in s.question for s in samples)
    for sample in samples:
        if sample.negative and "process of" in sample.question:
            assert f"the {sample.scenario} scene" in sample.question, sample.question

