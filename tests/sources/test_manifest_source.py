"""ManifestSource: JSONL episodes, paths kept inside the manifest's folder, counted skips."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from tpru.diagnostics import InputError, Skips
from tpru.schema import Episode
from tpru.sources import open_source
from tpru.sources.manifest import ManifestSource


def write_manifest(path: Path, lines: list[Any]) -> Path:
    """One line per item: dicts as JSON, strings as they are."""
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                   for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def read(manifest: Path, skips: Skips) -> list[Episode]:
    return list(ManifestSource(manifest, skips=skips).iter_episodes())


@pytest.fixture
def root(tmp_path: Path, write_image: Any) -> Path:
    """A manifest folder with ep/1.jpg, ep/2.jpg and clip.mp4 (bytes only)."""
    folder = tmp_path / "data"
    write_image(folder / "ep" / "1.jpg")
    write_image(folder / "ep" / "2.jpg")
    (folder / "clip.mp4").write_bytes(b"")
    return folder


def test_episodes_are_read_with_frames_resolved_inside_the_root(root: Path, skips: Skips) -> None:
    manifest = write_manifest(root / "episodes.jsonl", [
        {"id": "a", "scenario": "robot", "frames": ["ep/1.jpg", "./ep/../ep/2.jpg"],
         "steps": ["one", "two"], "description": "two steps", "meta": {"k": 1}},
        "",
        {"id": "b", "scenario": "nav", "source": "habitat", "schema_version": 1,
         "frames": [str(root / "ep" / "1.jpg"), "clip.mp4#t=1.5", "clip.mp4#t=2"]},
    ])
    a, b = read(manifest, skips)
    assert a.frames == (str(root / "ep" / "1.jpg"), str(root / "ep" / "2.jpg"))
    assert (a.source, a.steps, a.description, a.meta) == (
        "manifest", ("one", "two"), "two steps", {"k": 1})
    assert b.source == "habitat"
    assert b.frames == (str(root / "ep" / "1.jpg"), f"{root / 'clip.mp4'}#t=1.500",
                        f"{root / 'clip.mp4'}#t=2.000")
    assert not skips.counts


def test_a_symlink_that_stays_inside_is_allowed(root: Path, skips: Skips) -> None:
    (root / "link.jpg").symlink_to(root / "ep" / "1.jpg")
    manifest = write_manifest(root / "m.jsonl", [
        {"id": "a", "scenario": "robot", "frames": ["link.jpg"]}])
    [episode] = read(manifest, skips)
    assert episode.frames == (str(root / "ep" / "1.jpg"),)


def _escape(root: Path, kind: str, write_image: Any) -> str:
    outside = write_image(root.parent / "outside.jpg")
    if kind == "dotdot":
        return "../outside.jpg"
    if kind == "absolute":
        return str(outside)
    if kind == "symlink":
        (root / "ep" / "sneaky.jpg").symlink_to(outside)
        return "ep/sneaky.jpg"
    if kind == "symlinked_folder":
        (root / "up").symlink_to(root.parent)
        return "up/outside.jpg"
    return "../clip.mp4#t=1.0"  # a video ref escaping


ESCAPES = ["dotdot", "absolute", "symlink", "symlinked_folder", "video"]


@pytest.mark.parametrize("kind", ESCAPES)
def test_paths_escaping_the_root_are_refused(root: Path, skips: Skips, write_image: Any,
                                             kind: str) -> None:
    ref = _escape(root, kind, write_image)
    manifest = write_manifest(root / "m.jsonl", [
        {"id": "ok", "scenario": "robot", "frames": ["ep/1.jpg"]},
        {"id": "bad", "scenario": "robot", "frames": ["ep/1.jpg", ref]},
    ])
    assert [e.id for e in read(manifest, skips)] == ["ok"]
    assert dict(skips.counts) == {"path_escapes_root": 1}
    message = skips.examples["path_escapes_root"][0]
    assert f"{manifest}, line 2" in message
    assert repr(ref) in message


@pytest.mark.parametrize("kind", ESCAPES)
def test_escapes_stop_a_strict_run(root: Path, write_image: Any, kind: str) -> None:
    ref = _escape(root, kind, write_image)
    manifest = write_manifest(root / "m.jsonl", [
        {"id": "bad", "scenario": "robot", "frames": [ref]}])
    with pytest.raises(InputError, match="path_escapes_root"):
        read(manifest, Skips(strict=True))


BAD_LINES = [
    ("invalid_json", '{"id": "x", "scenario": '),
    ("invalid_json", '{"id": "x"} trailing'),
    ("bad_field", {"id": "x", "scenario": "robot", "frames": "ep/1.jpg"}),
    ("bad_field", {"id": 7, "scenario": "robot", "frames": ["ep/1.jpg"]}),
    ("bad_field", {"scenario": "robot", "frames": ["ep/1.jpg"]}),
    ("bad_field", {"id": "x", "scenario": "robot", "frames": ["ep/1.jpg"], "description": 3}),
    ("bad_field", {"id": "x", "scenario": "robot", "frames": ["ep/1.jpg"], "meta": [1]}),
    ("bad_field", {"id": "x", "scenario": "robot", "frames": ["ep/1.jpg"],
                   "schema_version": 99}),
    ("bad_field", ["not", "an", "object"]),
    ("steps_count", {"id": "x", "scenario": "robot", "frames": ["ep/1.jpg"],
                     "steps": ["a", "b"]}),
    ("empty_episode", {"id": "x", "scenario": "robot", "frames": []}),
    ("duplicate_id", {"id": "ok", "scenario": "robot", "frames": ["ep/2.jpg"]}),
]


@pytest.mark.parametrize(("reason", "line"), BAD_LINES)
def test_bad_lines_are_skipped_and_counted_naming_the_line(root: Path, reason: str,
                                                           line: Any) -> None:
    skips = Skips()
    manifest = write_manifest(root / "m.jsonl", [
        {"id": "ok", "scenario": "robot", "frames": ["ep/1.jpg"]}, "", line,
        {"id": "after", "scenario": "robot", "frames": ["ep/2.jpg"]}])
    assert [e.id for e in read(manifest, skips)] == ["ok", "after"]
    assert dict(skips.counts) == {reason: 1}
    assert skips.examples[reason][0].startswith(
        f"{manifest}:3:" if reason == "invalid_json" else f"{manifest}, line 3")


@pytest.mark.parametrize(("reason", "line"), BAD_LINES)
def test_bad_lines_stop_a_strict_run(root: Path, reason: str, line: Any) -> None:
    manifest = write_manifest(root / "m.jsonl", [
        {"id": "ok", "scenario": "robot", "frames": ["ep/1.jpg"]}, line])
    with pytest.raises(InputError, match=reason) as caught:
        read(manifest, Skips(strict=True))
    assert str(caught.value).startswith(
        f"{manifest}:2:" if reason == "invalid_json" else f"{manifest}, line 2")


def test_a_line_that_is_not_utf8_is_skipped(root: Path, skips: Skips) -> None:
    manifest = root / "m.jsonl"
    manifest.write_bytes(b'{"id": "\xff"}\n' + json.dumps(
        {"id": "ok", "scenario": "robot", "frames": ["ep/1.jpg"]}).encode() + b"\n")
    assert [e.id for e in read(manifest, skips)] == ["ok"]
    assert dict(skips.counts) == {"invalid_json": 1}


def test_broken_json_is_reported_as_file_line_column(root: Path, skips: Skips) -> None:
    """Columns count characters from 1 on the line itself: a record cut short is reported
    at its end (not at column 1 of a line after it), a tab and a non-ASCII letter count
    one each, a bad UTF-8 byte gets a column too, and a byte-order mark is not a problem."""
    manifest = root / "m.jsonl"
    good = json.dumps({"id": "ok", "scenario": "robot", "frames": ["ep/1.jpg"]}).encode()
    manifest.write_bytes(b"\xef\xbb\xbf" + good + b"\n"
                         + b'{"id": "x", "scenario": \n'          # cut short: column 25
                         + b'\t{"id": "\xc3\xa9", "frames": [x]}\r\n'  # the x: column 25
                         + b'{"id": "\xc3\xa9\xff"}\n'              # the bad byte: column 10
                         + b'{"id": "y"}}\n')                      # extra data: column 12
    assert [e.id for e in read(manifest, skips)] == ["ok"]
    assert skips.examples["invalid_json"] == [
        f"{manifest}:2:25: not valid JSON (Expecting value)",
        f"{manifest}:3:25: not valid JSON (Expecting value)",
        f"{manifest}:4:10: not UTF-8 (byte 0xff)",
        f"{manifest}:5:12: not valid JSON (Extra data)"]


def test_open_source_by_name(root: Path) -> None:
    manifest = write_manifest(root / "m.jsonl", [
        {"id": "a", "scenario": "robot", "frames": ["ep/1.jpg"]}])
    assert [e.id for e in open_source(f"manifest:{manifest}").iter_episodes()] == ["a"]
    with pytest.raises(InputError, match="no such manifest"):
        open_source(f"manifest:{root / 'missing.jsonl'}")


def test_unknown_keys_are_warned_once_per_key_with_a_guess(
        root: Path, skips: Skips, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tpru")  # other tests may leave the root at ERROR
    lines = [{"id": f"e{i}", "scenario": "robot", "frames": ["ep/1.jpg"], "descripton": "typo"}
             for i in range(10)]
    lines[4]["scenerio"] = "nav"
    manifest = write_manifest(root / "m.jsonl", lines)
    found = read(manifest, skips)
    assert len(found) == 10 and all(e.description is None for e in found)
    assert not skips.counts
    assert skips.warning_counts == {"unknown key 'descripton'": 10, "unknown key 'scenerio'": 1}
    assert skips.warning_examples["unknown key 'descripton'"] == [
        f"{manifest}, line {n}: unknown key 'descripton' is ignored (did you mean "
        "'description'?)" for n in (1, 2, 3)]
    assert skips.warning_examples["unknown key 'scenerio'"] == [
        f"{manifest}, line 5: unknown key 'scenerio' is ignored (did you mean 'scenario'?)"]
    # Ten lines with the typo log three warnings, not ten.
    assert caplog.text.count("unknown key 'descripton'") == 3
    assert skips.warning_summary()[0].endswith("(and 9 more like it)")


def test_a_frame_that_is_a_fifo_skips_its_line_instead_of_blocking(
        root: Path, skips: Skips) -> None:
    os.mkfifo(root / "ep" / "pipe.jpg")
    manifest = write_manifest(root / "m.jsonl", [
        {"id": "ok", "scenario": "robot", "frames": ["ep/1.jpg", "ep/gone.jpg", "ep"]},
        {"id": "fifo", "scenario": "robot", "frames": ["ep/1.jpg", "ep/pipe.jpg"]},
    ])
    assert [e.id for e in read(manifest, skips)] == ["ok"]  # missing files are the reader's
    assert dict(skips.counts) == {"unreadable_file": 1}
    assert skips.examples["unreadable_file"] == [
        f"{manifest}, line 2: frame {root / 'ep' / 'pipe.jpg'} is not a regular file "
        "(a FIFO, socket or device)"]
