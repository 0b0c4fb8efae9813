"""One line of an evaluation run's ``results.jsonl``: one scored item."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tpru.records._fields import Fields


@dataclass(frozen=True)
class ResultLine:
    """One scored item, as the runner (`tpru.eval.runner`) writes it.

    Only ``id``, ``correct`` and ``answer`` are required when reading: a
    results file written by hand or by another harness reports with what it
    has, and a missing field reads as its default.

    Attributes:
        id: the item's id (a number in the file reads as text).
        correct: ``prediction == answer``; false for a backend failure.
        answer: the gold answer ("C", or a letter sequence "CABD").
        benchmark: the benchmark's name.
        task: the task (``ordering``, a MuirBench task, a LEGO category...).
        category, scenario: the item's category and scenario, where it has them.
        negative: a tpru sample whose gold is the None option; None elsewhere.
        answerable: MuirBench's answerable/unanswerable twins; None elsewhere.
        counterpart: the item's twin (see `tpru.eval.twins`), or None.
        frames: the sequence's number of frames where the benchmark records it
            (a tpru dataset); None elsewhere and in lines written before it
            was recorded (a report then counts the question's images).
        difficulty: the sample's difficulty score in [0, 1] (a tpru dataset
            built with scores), or None.
        prediction, rule: the answer extracted from the response and the rule
            that found it (`tpru.score.extract`); None and ``none`` when none.
        response: the model's text; error: the backend's failure, or None.
        question, options, images: the item as asked.
        usage: the backend's token counts, as it reported them.
    """

    SCHEMA_VERSION: ClassVar[int] = 1
    """Written as ``schema_version`` on every line; lines without one are version 1."""

    id: str
    correct: bool
    answer: str
    benchmark: str = ""
    task: str = ""
    category: str | None = None
    scenario: str | None = None
    negative: bool | None = None
    answerable: bool | None = None
    counterpart: str | None = None
    frames: int | None = None
    difficulty: float | None = None
    prediction: str | None = None
    rule: str = "none"
    response: str = ""
    error: str | None = None
    question: str = ""
    options: tuple[str, ...] | None = None
    images: tuple[str, ...] = ()
    usage: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The line's JSON object, keys in the order the runner has always written them;
        ``frames`` and ``difficulty`` (newer; a tpru without them ignores them) only
        where known."""
        return {
            "schema_version": self.SCHEMA_VERSION,
            "id": self.id, "benchmark": self.benchmark, "task": self.task,
            "category": self.category, "scenario": self.scenario, "negative": self.negative,
            "answerable": self.answerable, "counterpart": self.counterpart,
            # Written only where known, so a line of another benchmark is as it always was.
            **({} if self.frames is None else {"frames": self.frames}),
            **({} if self.difficulty is None else {"difficulty": self.difficulty}),
            "answer": self.answer, "prediction": self.prediction, "rule": self.rule,
            "correct": self.correct, "response": self.response, "error": self.error,
            "question": self.question,
            "options": None if self.options is None else list(self.options),
            "images": list(self.images), "usage": dict(self.usage),
        }

    def dumps(self) -> str:
        """The line as written to ``results.jsonl`` (without its newline).

        ``default=str``: a backend may report usage values JSON cannot hold.
        """
        return json.dumps(self.to_dict(), ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> ResultLine:
        """Read one decoded line; `where` ("FILE, line N") starts any error's message.

        Raises:
            InputError: not an object, a required field missing, a field of the
                wrong kind; `SchemaVersionError` for a line from a newer tpru.
        """
        line = Fields(data, where)
        line.check_version("results line", cls.SCHEMA_VERSION)
        counterpart = line.get("counterpart", (str, int), None)
        return cls(
            id=str(line.get("id", (str, int))), correct=line.get("correct", bool),
            answer=str(line.get("answer", (str, int))),
            benchmark=line.get("benchmark", str, ""), task=line.get("task", str, ""),
            category=line.get("category", str, None), scenario=line.get("scenario", str, None),
            negative=line.get("negative", bool, None),
            answerable=line.get("answerable", bool, None),
            counterpart=None if counterpart is None else str(counterpart),
            frames=line.get("frames", int, None), difficulty=line.number("difficulty", None),
            prediction=line.get("prediction", str, None), rule=line.get("rule", str, "none"),
            response=line.get("response", str, ""), error=line.get("error", str, None),
            question=line.get("question", str, ""), options=line.texts("options", None),
            images=line.texts("images", ()), usage=line.get("usage", dict, {}))
