"""The records that flow through tpru: `Episode` in, `Sample` out.

Both are frozen dataclasses serialised as one JSON object per line (JSONL).
Every line carries ``schema_version`` so that a reader can refuse records
written by an incompatible version instead of misreading them. Reading
validates every field and raises `RecordError`, whose message names the file,
the line and the field.

Example:
    >>> ep = Episode(id="ep1", scenario="robot", source="frames",
    ...              frames=("a.jpg", "b.jpg"))
    >>> Episode.from_dict(ep.to_dict()) == ep
    True
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tpru.diagnostics import json_problem

# The option texts the scorer reads and the image placeholder: defined in tpru.score,
# which must copy alone.
from tpru.score.shared import IMAGE_OPTION as IMAGE_OPTION
from tpru.score.shared import IMAGE_PLACEHOLDER as IMAGE_PLACEHOLDER
from tpru.score.shared import NONE_OPTION as NONE_OPTION

SCHEMA_VERSION = 1
"""Version of the Episode and Sample records; bumped on any incompatible change."""

TASKS = ("ordering", "next_frame", "prev_frame")
"""The paper's three tasks."""


class RecordError(ValueError):
    """A record that does not match the schema; the message names where."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None,
                 line: int | None = None, field_name: str | None = None) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field_name is not None:
            where.append(f"field '{field_name}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.reason = message
        self.path = None if path is None else str(path)
        self.line = line
        self.field_name = field_name


def _need(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
          *, optional: bool = False) -> Any:
    if key not in data or data[key] is None:
        if optional:
            return None
        raise RecordError("missing", field_name=key)
    value = data[key]
    # bool is an int in Python; do not accept it where a number or text is meant.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise RecordError(f"expected {_kind_name(kind)}, got bool", field_name=key)
    if not isinstance(value, kind):
        raise RecordError(f"expected {_kind_name(kind)}, got {type(value).__name__}",
                          field_name=key)
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _str_list(data: Mapping[str, Any], key: str, *,
              optional: bool = False) -> tuple[str, ...] | None:
    value = _need(data, key, list, optional=optional)
    if value is None:
        return None
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RecordError(f"item {i} should be text, got {type(item).__name__}",
                              field_name=key)
    return tuple(value)


def _check_version(data: Mapping[str, Any]) -> None:
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise RecordError(f"schema version {version!r} is not supported "
                          f"(this tpru reads version {SCHEMA_VERSION})",
                          field_name="schema_version")


@dataclass(frozen=True)
class Episode:
    """One ordered sequence of frames from one source.

    Attributes:
        id: unique within the build; sources make it stable across runs.
        scenario: ``robot``, ``lego``, ``gui``, ``nav`` or any name a source gives.
        source: the kind of source that produced it (``frames``, ``video``, ...).
        frames: ordered image references (paths, or ``path#t=SECONDS`` for a
            video frame), earliest first.
        steps: optional text per frame, same length as ``frames``.
        description: optional text for the whole process, e.g. "stacking the
            red cube on the blue one".
        meta: anything else the source knows (kept, never interpreted).
    """

    id: str
    scenario: str
    source: str
    frames: tuple[str, ...]
    steps: tuple[str, ...] | None = None
    description: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.steps is not None and len(self.steps) != len(self.frames):
            raise RecordError(f"{len(self.steps)} steps for {len(self.frames)} frames",
                              field_name="steps")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "scenario": self.scenario,
            "source": self.source,
            "frames": list(self.frames),
            "steps": None if self.steps is None else list(self.steps),
            "description": self.description,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Episode:
        if not isinstance(data, Mapping):
            raise RecordError(f"expected an object, got {type(data).__name__}")
        _check_version(data)
        frames = _str_list(data, "frames")
        assert frames is not None
        return cls(
            id=_need(data, "id", str),
            scenario=_need(data, "scenario", str),
            source=_need(data, "source", str, optional=True) or "manifest",
            frames=frames,
            steps=_str_list(data, "steps", optional=True),
            description=_need(data, "description", str, optional=True),
            meta=_need(data, "meta", dict, optional=True) or {},
        )


@dataclass(frozen=True)
class Sample:
    """One multi-image question.

    Attributes:
        id: unique within the dataset.
        task: one of `TASKS`.
        scenario: the episode's scenario.
        episode_id: the episode the question is about.
        question: text with one ``<image>`` placeholder per question image.
        options: the choices ("<image>" for an image option, `NONE_OPTION`),
            or None for the letter-sequence ordering form.
        answer: a letter ("C") for a choice, a letter sequence ("CABD") for
            the letter form of ordering.
        images: paths inside the dataset: the question's images in placeholder
            order, then the image options in option order.
        negative: the gold answer is `NONE_OPTION` (text does not match the
            images, or the true frame is not among the candidates).
        meta: provenance and details (split, negative kind, distractor sources,
            the frames' positions in the episode, ...).
    """

    id: str
    task: str
    scenario: str
    episode_id: str
    question: str
    options: tuple[str, ...] | None
    answer: str
    images: tuple[str, ...]
    negative: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise RecordError(f"unknown task {self.task!r} (expected one of {', '.join(TASKS)})",
                              field_name="task")
        n_question = self.question.count(IMAGE_PLACEHOLDER)
        n_options = 0 if self.options is None else self.options.count(IMAGE_OPTION)
        if n_question + n_options != len(self.images):
            raise RecordError(
                f"{len(self.images)} images for {n_question} question placeholders "
                f"and {n_options} image options", field_name="images")
        if not self.answer or not self.answer.isalpha() or not self.answer.isupper():
            raise RecordError(f"answer {self.answer!r} is not capital letters",
                              field_name="answer")
        if self.options is not None:
            if len(self.answer) != 1 or ord(self.answer) - ord("A") >= len(self.options):
                raise RecordError(f"answer {self.answer!r} is not one of "
                                  f"{len(self.options)} options", field_name="answer")
            gold_is_none = self.options[ord(self.answer) - ord("A")] == NONE_OPTION
            if gold_is_none != self.negative:
                raise RecordError("a sample is negative exactly when its gold option is "
                                  f"{NONE_OPTION!r}", field_name="negative")

    @property
    def question_images(self) -> tuple[str, ...]:
        return self.images[: self.question.count(IMAGE_PLACEHOLDER)]

    @property
    def option_images(self) -> tuple[str, ...]:
        return self.images[self.question.count(IMAGE_PLACEHOLDER):]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "task": self.task,
            "scenario": self.scenario,
            "episode_id": self.episode_id,
            "question": self.question,
            "options": None if self.options is None else list(self.options),
            "answer": self.answer,
            "images": list(self.images),
            "negative": self.negative,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        if not isinstance(data, Mapping):
            raise RecordError(f"expected an object, got {type(data).__name__}")
        _check_version(data)
        images = _str_list(data, "images")
        assert images is not None
        return cls(
            id=_need(data, "id", str),
            task=_need(data, "task", str),
            scenario=_need(data, "scenario", str),
            episode_id=_need(data, "episode_id", str),
            question=_need(data, "question", str),
            options=_str_list(data, "options", optional=True),
            answer=_need(data, "answer", str),
            images=images,
            negative=_need(data, "negative", bool, optional=True) or False,
            meta=_need(data, "meta", dict, optional=True) or {},
        )


def option_letter(index: int) -> str:
    """The letter of option `index` (0 -> "A")."""
    return chr(ord("A") + index)


def dumps(record: Episode | Sample) -> str:
    """One JSONL line (without the newline), keys in a fixed order."""
    return json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":"))


R = TypeVar("R", Episode, Sample)


def read_jsonl(path: str | os.PathLike[str], kind: type[R]) -> Iterator[R]:
    """Read and validate records of `kind` from a JSONL file, one by one.

    Blank lines are ignored. Raises `RecordError` naming the file, line and
    field at the first bad record.
    """
    path = Path(path)
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise RecordError(f"not valid JSON ({json_problem(err, line=False)})",
                                  path=path, line=number) from None
            try:
                yield kind.from_dict(data)
            except RecordError as err:
                raise RecordError(err.reason, path=path, line=number,
                                  field_name=err.field_name) from None


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Episode | Sample]) -> int:
    """Write records to `path` atomically (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(dumps(record) + "\n")
            count += 1
    os.replace(tmp, path)
    return count
