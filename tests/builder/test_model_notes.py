"""The model stages' notes live in a file in the work folder, not in the driver's memory.

A build with every model stage (judge, descriptions with captions, negatives,
paraphrases) through the rule-based vision model served over HTTP, once as it
runs (notes read from the file an episode at a time) and once with the same
notes copied into a dict first: the two datasets are the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from rule_model import RuleModel, write_recordings

import tpru.builder.pipeline as pipeline
from helpers import folder_bytes
from tpru.builder import model_stages
from tpru.builder.config import BuildConfig
from tpru.builder.episode_notes import NOTES, EpisodeNotes, NotesFile
from tpru.builder.model_stages import StagesResult
from tpru.config import load
from tpru.models.serve import serve


class _InMemory(dict[str, EpisodeNotes]):
    """The notes as the driver held them before: a dict (closed as the file is)."""

    def close(self) -> None:
        pass


def test_notes_from_the_file_build_what_notes_in_a_dict_built(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "recordings"
    write_recordings(source)
    seen: list[StagesResult] = []
    real = model_stages.run_model_stages

    in_memory = _InMemory()

    class Kept(NotesFile):
        """Also keeps the notes the stages wrote, as they wrote them, in a dict."""

        def extend(self, notes: Mapping[str, EpisodeNotes]) -> None:
            in_memory.update(notes)
            super().extend(notes)

    def in_a_dict(*args: Any, **kwargs: Any) -> StagesResult:
        result = real(*args, **kwargs)
        result.notes.close()
        return StagesResult(in_memory, result.report, result.calls)  # type: ignore[arg-type]

    def kept(*args: Any, **kwargs: Any) -> StagesResult:
        result = real(*args, **kwargs)
        seen.append(result)
        return result

    with serve(RuleModel(), model_name="rule") as server:
        def build(out: Path) -> None:
            data: dict[str, Any] = {
                "sources": [f"frames:{source}"], "out": str(out),
                "split": {"ratios": {"train": 0.5, "test": 0.5}},
                "model": {"name": "openai:rule", "cache": str(tmp_path / "cache"),
                          "batch_size": 4, "options": {"base_url": server.url}},
                "judge": {"enabled": True},
                "describe": {"mode": "always", "paraphrases": 2},
                "tasks": {"negative_rate": 0.6, "negative_kinds": ["mismatch"]},
                "text": {"paraphrase_rate": 0.5}}
            pipeline.build(load(BuildConfig, data), overwrite=True, show_progress=False)

        monkeypatch.setattr(pipeline, "run_model_stages", in_a_dict)
        monkeypatch.setattr(model_stages, "NotesFile", Kept)
        build(tmp_path / "from_dict")
        monkeypatch.undo()
        assert len(in_memory) == 13 and any(n.captions for n in in_memory.values())
        monkeypatch.setattr(pipeline, "run_model_stages", kept)
        build(tmp_path / "from_file")

    # The driver holds a file, not a dict of notes.
    (result,) = seen
    notes = result.notes
    assert isinstance(notes, NotesFile) and not isinstance(notes, dict)
    assert notes.path == tmp_path / "from_file.partial" / "work" / NOTES
    assert not any(isinstance(value, dict | list | tuple | set)
                   for value in vars(notes).values())
    # What pass 2 read: every kind of note, for the episodes the judge kept and dropped.
    written = folder_bytes(tmp_path / "from_file")
    samples = [json.loads(line) for name, data in written.items() if name.endswith(".jsonl")
               for line in data.decode().splitlines()]
    assert any(s["meta"].get("negative_source") == "model" for s in samples)
    assert any(s["meta"].get("description_paraphrase") is not None for s in samples)
    assert all(s["meta"]["captions"] for s in samples)
    info = json.loads(written["build.json"])
    assert info["model_stages"]["judge"] == {"kept": 10, "rejected": 3}
    assert info["model_stages"]["describe"]["paraphrases"] == 20
    # The same dataset, byte for byte.
    assert written == folder_bytes(tmp_path / "from_dict")


def test_the_notes_file_gives_back_what_was_stored(tmp_path: Path) -> None:
    path = tmp_path / NOTES
    path.write_text("left by a killed build")
    stored = {
        "a": EpisodeNotes(drop="judge_rejected", message="episode a: the judge said 'no'"),
        "källa/b": EpisodeNotes(description="stacking ✓ cups", captions={5: "x", 0: "y",
                                                                         12: ""},
                                negative="unstacking \ud800 cups", paraphrases=("p", "q")),
        "c": EpisodeNotes(),
        "d": EpisodeNotes(description="", paraphrases=()),
    }
    notes = NotesFile(path)
    notes.extend(stored)
    assert notes["a"] == stored["a"]
    back = notes["källa/b"]
    assert back == stored["källa/b"] and list(back.captions) == [5, 0, 12]
    assert notes.get("c", EpisodeNotes()) == EpisodeNotes()
    assert "c" not in notes and notes.get("nope") is None  # notes like no notes: not stored
    assert notes["d"] == stored["d"]
    with pytest.raises(KeyError):
        notes["nope"]
    assert sorted(notes) == ["a", "d", "källa/b"] and len(notes) == 3
    notes.extend({"a": EpisodeNotes(description="again")})
    assert notes["a"] == EpisodeNotes(description="again") and len(notes) == 3
    notes.close()
    assert NotesFile(path).get("a") is None  # a new build starts from an empty file
