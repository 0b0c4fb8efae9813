"""Episodes from EPIC-KITCHENS-100 narrations: runs of consecutive actions in a video.

``epic-kitchens:PATH`` names a narration CSV (``EPIC_100_train.csv``,
``EPIC_100_validation.csv``) with the columns ``narration_id, participant_id,
video_id, narration_timestamp, start_timestamp, stop_timestamp, start_frame,
stop_frame, narration, verb, verb_class, noun, noun_class, all_nouns,
all_noun_classes``; times are ``HH:MM:SS.ff``. The video of ``P01_01`` is
``<video_root>/P01/videos/P01_01.MP4`` (or ``.mp4``), ``video_root`` defaulting
to the CSV's folder.

A kitchen video holds hours of unrelated actions, so an episode is a run of
``steps`` consecutive narrations of one video (runs do not share narrations;
a shorter remainder at the video's end is left out), its steps the
narrations. Actions overlap in EPIC (a tap runs while a cup is rinsed); a
narration that starts before the previous kept one ends is left out of the
runs, so every step's frame comes after the one before (one warning per CSV
gives the count). Frames are chosen as in `tpru.sources.segments`. There is
no description unless ``description`` gives one for all episodes, so the
builder makes only ``missing`` negatives, which needs no text.

A CSV without the columns needed stops with an error naming the file and the
missing columns; a row with an unreadable time is counted as ``bad_field``.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Iterator
from itertools import groupby
from pathlib import Path

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources.segments import FrameChoice, Procedure, Segment, StepFrames, made

REQUIRED = ("narration_id", "participant_id", "video_id", "start_timestamp",
            "stop_timestamp", "narration")
_KEPT = ("narration_id", "verb", "noun")
_TIME = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)$")
VIDEO_SUFFIXES = (".MP4", ".mp4")


def parse_timestamp(text: str) -> float | None:
    """Seconds of ``HH:MM:SS.ff``, or None.

    Example:
        >>> parse_timestamp("00:01:02.37")
        62.37
    """
    match = _TIME.match(text.strip())
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 6)


class EpicKitchensSource:
    """Episodes from an EPIC-KITCHENS-100 narration CSV (see the module docstring).

    Args:
        path: the CSV file.
        skips: where bad rows and missing or unreadable videos are counted.
        video_root: the folder holding ``<participant>/videos/`` (default: the CSV's).
        steps: narrations per episode.
        description: one description for every episode (default: none).
        frame: which frame stands for a narration: ``end``, ``middle`` or ``keyframe``.
        change_threshold: for ``keyframe``, the smallest change (0-1) that counts.

    Raises:
        InputError: the CSV is missing or lacks a needed column.
        ValueError: ``steps`` is below 2.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips,
                 video_root: str | None = None, steps: int = 6,
                 description: str | None = None, frame: FrameChoice = "end",
                 change_threshold: float = 0.03) -> None:
        if steps < 2:
            raise ValueError(f"steps must be at least 2, got {steps}")
        self.path = Path(os.path.abspath(Path(path).expanduser()))
        if not self.path.is_file():
            raise InputError(f"{path}: no such EPIC-KITCHENS narration CSV")
        self.root = (Path(os.path.abspath(Path(video_root).expanduser()))
                     if video_root else self.path.parent)
        if not self.root.is_dir():
            raise InputError(f"{video_root}: no such video folder (video_root)")
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise InputError(f"{self.path}: not an EPIC-KITCHENS narration CSV, missing "
                             f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        self.skips = skips
        self.run_length = steps
        self.description = description
        self.steps = StepFrames(skips, frame=frame, change_threshold=change_threshold)

    def iter_episodes(self) -> Iterator[Episode]:
        """Runs of each video in the CSV's order of videos, then of start times."""
        return self.admit(self.open_episode(key) for key in self.episode_keys())

    # A split source (`tpru.sources.base.SplitSource`): listing reads the CSV; opening a
    # run of narrations reads its video on a build's workers.
    def episode_keys(self) -> Iterator[Procedure]:
        """The runs of narrations, in the CSV's order of videos, then of start times."""
        left_out = 0
        for video_id, rows in groupby(self._rows(), key=lambda r: r[1]["video_id"]):
            kept: list[tuple[int, dict[str, str], Segment]] = []
            for line, row, seg in sorted(rows, key=lambda r: (r[2].start, r[0])):
                if kept and seg.start < kept[-1][2].end:
                    left_out += 1
                    continue
                kept.append((line, row, seg))
            for n in range(len(kept) // self.run_length):
                run = kept[n * self.run_length:(n + 1) * self.run_length]
                yield self._procedure(video_id, n, run)
        if left_out:
            self.skips.warn("overlapping narrations", f"{self.path}: {left_out} narrations "
                            "that start before the previous one ends are left out of runs")

    def open_episode(self, key: Procedure) -> Episode | None:
        """The episode of run `key`, or None (counted) when its video cannot be read."""
        return self.steps.episode(key)

    def admit(self, opened: Iterable[Episode | None]) -> Iterator[Episode]:
        """The episodes made, in key order."""
        return made(opened)

    def _rows(self) -> Iterator[tuple[int, dict[str, str], Segment]]:
        """``(line, row, segment)`` per readable row; a bad time is counted, naming its line."""
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                start = parse_timestamp(row["start_timestamp"] or "")
                stop = parse_timestamp(row["stop_timestamp"] or "")
                if start is None or stop is None:
                    self.skips.skip("bad_field", f"{self.path}, line {reader.line_num}: "
                                    f"narration {row['narration_id']!r}: times "
                                    f"{row['start_timestamp']!r}-{row['stop_timestamp']!r} "
                                    "are not HH:MM:SS.ff")
                    continue
                yield reader.line_num, row, Segment(start, stop, (row["narration"] or "").strip())

    def _procedure(self, video_id: str, n: int,
                   run: list[tuple[int, dict[str, str], Segment]]) -> Procedure:
        participant = run[0][1]["participant_id"]
        folder = self.root / participant / "videos"
        candidates = [folder / f"{video_id}{suffix}" for suffix in VIDEO_SUFFIXES]
        video = next((c for c in candidates if c.is_file()), candidates[0])
        return Procedure(
            id=f"{video_id}/{n:04d}", video=video, source="epic-kitchens", scenario="kitchen",
            where=f"{self.path}, video {video_id}", description=self.description,
            segments=tuple(seg for _, _, seg in run),
            meta={"video_id": video_id, "participant_id": participant,
                  **{f"{key}s": [row.get(key) for _, row, _ in run] for key in _KEPT}})
