"""Fixtures for the builder's tests: episode folders written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from episode_files import write_episodes


@pytest.fixture(scope="session")
def episodes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 clean episodes over four scenarios (read-only: tests must not change it)."""
    return write_episodes(tmp_path_factory.mktemp("episodes"), 24)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tpru's synthetic episodes: 6 per scenario, 24 in all, 6 frames each (read-only)."""
    from tpru.sources.synthetic import write_synthetic_episodes

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_episodes(root, episodes=6, frames=6, seed=0)
    return root
