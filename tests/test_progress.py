"""Progress: a bar on a terminal, plain log lines now and then elsewhere, nothing with -q."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tpru.progress import LOG_EVERY_S, LogBar, progress_bar


class Clock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_and_one_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tpru")
    clock = Clock()
    bar = LogBar("reading frames", "frames", None, 30.0, clock=clock)
    for _ in range(40):
        clock.now += 1
        bar.advance(30)
    clock.now += 35
    bar.finish()
    assert caplog.messages == [
        "reading frames: 900 frames, 30.0 frames/s, 30 s",
        "reading frames: done, 1,200 frames in 1 min 15 s",
    ]


def test_a_line_with_a_total_says_how_far(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tpru")
    clock = Clock()
    bar = LogBar("writing samples", "episodes", 400, 30.0, clock=clock)
    bar.note("24 episodes already done")
    clock.now += 30
    bar.advance(120)
    assert caplog.messages == ["writing samples: 24 episodes already done",
                               "writing samples: 120/400 episodes (30%), 4.0 episodes/s, 30 s"]


def test_off_a_terminal_progress_is_logged_and_quiet_shows_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tpru")
    assert LOG_EVERY_S == 30.0
    with progress_bar("counting", unit="items", total=3) as bar:  # pytest's stderr: no terminal
        for _ in range(3):
            bar.advance()
    assert caplog.messages == ["counting: done, 3 items in 0 s"]
    caplog.clear()
    with progress_bar("counting", show=False) as bar:
        bar.advance()
        bar.note("hidden")
    assert caplog.messages == []


def test_a_build_with_stderr_in_a_file_reports_progress(tmp_path: Path) -> None:
    from tpru.sources.synthetic import write_synthetic_episodes

    episodes = tmp_path / "episodes"
    write_synthetic_episodes(episodes, episodes=1, frames=6, seed=0)  # one per scenario
    command = [sys.executable, "-m", "tpru.cli", "build", "--source", f"frames:{episodes}"]
    log = tmp_path / "log.txt"
    for quiet in ([], ["-q"]):
        with log.open("w") as handle:
            subprocess.run([*command, *quiet, "--out", str(tmp_path / f"data{quiet}")],
                           stderr=handle, stdout=subprocess.DEVNULL, check=True)
        text = log.read_text()
        if quiet:
            assert text == ""
        else:
            assert "reading frames: done, 24 frames in" in text
            assert "writing samples: done, 4 episodes in" in text
