"""Asking a model during a build: prompt files, batching, and a cache of every answer.

The model-in-the-loop stages (judge, describe) ask one model many questions
about episodes. A `ModelCaller` sends them in batches through any `Backend`
and keeps every answer in an `AnswerCache`: a JSONL file per stage in a cache
folder, keyed by a hash of what decides the answer (the model and its options,
the prompt text, the images' content, the generation budget). A rebuild, a
resumed build, or a build with other task settings asks nothing twice; a
changed prompt file or model asks again.

Failed requests (the backend's ``error`` after its own retries) are not
cached, so the next build asks again.

Prompt files are plain text with ``{name}`` placeholders (``{images}``,
``{n}``, ``{scenario}``, ``{description}``, ...). Only known names are
replaced, so a prompt may hold other braces (JSON examples) as they are.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tpru.diagnostics import InputError
from tpru.models import answer_identity
from tpru.models.base import Backend, Request
from tpru.schema import IMAGE_PLACEHOLDER

log = logging.getLogger("tpru")

TRANSPORT_OPTIONS = frozenset({"base_url", "concurrency", "batch_size", "timeout",
                               "max_retries", "backoff", "max_backoff", "api_key_env",
                               "device"})
"""Backend options that change how a model is reached, not what it answers: left out of
the cache key, so moving a model to another server keeps its answers."""

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def read_prompt(path: str | None, builtin: str) -> str:
    """The text of prompt file `path`, or of tpru's built-in prompt named `builtin`."""
    if path is None:
        return (resources.files("tpru.builder") / "prompts" / f"{builtin}.txt").read_text(
            encoding="utf-8")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the prompt file ({err})") from None
    if not text.strip():
        raise InputError(f"{path}: the prompt file is empty")
    return text


def fill_prompt(template: str, values: Mapping[str, str], *, where: str) -> str:
    """`template` with each ``{name}`` in `values` replaced; other braces stay.

    Raises:
        InputError: the template names a placeholder that `values` lacks (with
            the ones it has), or puts a literal ``<image>`` outside ``{images}``.

    Example:
        >>> fill_prompt("Frames: {images} ({n}) {json}", {"images": "<image>", "n": "1"},
        ...             where="demo")
        'Frames: <image> (1) {json}'
    """
    if IMAGE_PLACEHOLDER in template:
        raise InputError(f"{where}: write {{images}} where the frames go, not {IMAGE_PLACEHOLDER}")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise InputError(f"{where}: unknown placeholder {{{name}}} "
                             f"(known: {', '.join('{' + k + '}' for k in values)})")
        return values[name]

    return _PLACEHOLDER.sub(replace, template)


def image_lines(count: int) -> str:
    """``Frame 1: <image>`` ... one line per frame, for the ``{images}`` placeholder."""
    return "\n".join(f"Frame {i}: {IMAGE_PLACEHOLDER}" for i in range(1, count + 1))


class AnswerCache:
    """Answers by key, one JSONL file per stage in `folder`; appended and flushed per batch.

    A half-written last line (a build killed mid-write) is ignored when read.
    """

    def __init__(self, folder: Path, stage: str) -> None:
        self.path = folder / f"{stage}.jsonl"
        self._answers: dict[str, str] = {}
        if self.path.exists():
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                        self._answers[str(record["key"])] = str(record["text"])
                    except (ValueError, KeyError, TypeError):
                        continue

    def get(self, key: str) -> str | None:
        return self._answers.get(key)

    def put_all(self, items: Iterable[tuple[str, str]]) -> None:
        lines = []
        for key, text in items:
            self._answers[key] = text
            lines.append(json.dumps({"key": key, "text": text}, ensure_ascii=False) + "\n")
        if not lines:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("".join(lines))
                handle.flush()
        except OSError as err:
            raise InputError(f"{self.path}: cannot write the model answer cache "
                             f"({err.strerror or err}); set model.cache to a writable "
                             "folder") from None


@dataclass(frozen=True)
class Question:
    """One thing to ask: the episode it is about, the prompt, the image files.

    `image_keys` are the images' content digests: the cache key uses them, so
    the same frames under other paths hit the cache.
    """

    episode: str
    prompt: str
    images: tuple[str, ...] = ()
    image_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Answer:
    question: Question
    text: str
    error: str | None = None
    cached: bool = False


class ModelCaller:
    """Asks `backend` questions for one stage, in batches, through the stage's cache.

    Attributes:
        counts: ``asked`` (sent to the model), ``cached`` (answered from the
            cache) and ``errors`` (failed after the backend's retries).
    """

    def __init__(self, backend: Backend, *, spec: str, options: Mapping[str, Any],
                 cache_dir: Path, stage: str, batch_size: int, max_new_tokens: int) -> None:
        self.backend = backend
        self.stage = stage
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.cache = AnswerCache(cache_dir, stage)
        # Where the model runs (``ray:`` actors, a server) does not change its answers.
        spec, options = answer_identity(spec, options)
        identity = {k: v for k, v in sorted(options.items()) if k not in TRANSPORT_OPTIONS}
        self._model_key = json.dumps({"model": spec, "options": identity}, sort_keys=True,
                                     default=str)
        self.counts: Counter[str] = Counter()
        self.first_error: str | None = None
        self._failed = 0
        """Requests sent that failed (repeats of a failed question not counted)."""

    def key(self, question: Question) -> str:
        blob = json.dumps([self._model_key, self.stage, question.prompt,
                           list(question.image_keys), self.max_new_tokens])
        return hashlib.sha256(blob.encode()).hexdigest()

    def ask(self, questions: Sequence[Question]) -> list[Answer]:
        """Answers in the order of `questions`; the uncached ones go to the model in batches,
        each distinct question once."""
        answers: list[Answer | None] = [None] * len(questions)
        missing: list[tuple[int, str]] = []
        repeats: dict[str, list[int]] = {}
        for i, question in enumerate(questions):
            key = self.key(question)
            text = self.cache.get(key)
            if text is not None:
                answers[i] = Answer(question, text, cached=True)
                self.counts["cached"] += 1
            elif key in repeats:  # the same question twice (a text-only prompt): ask once
                repeats[key].append(i)
            else:
                repeats[key] = []
                missing.append((i, key))
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start:start + self.batch_size]
            requests = [Request(id=f"{self.stage}-{i}", prompt=questions[i].prompt,
                                images=questions[i].images,
                                max_new_tokens=self.max_new_tokens, temperature=0.0)
                        for i, _ in batch]
            responses = self.backend.generate(requests)
            if len(responses) != len(requests):
                raise InputError(f"{self.backend.name} answered {len(responses)} of "
                                 f"{len(requests)} requests")
            fresh = []
            for (i, key), response in zip(batch, responses, strict=True):
                self.counts["asked"] += 1
                if response.error is not None:
                    self.counts["errors"] += 1
                    self._failed += 1
                    self.first_error = self.first_error or response.error
                    answers[i] = Answer(questions[i], "", error=response.error)
                    continue
                answers[i] = Answer(questions[i], response.text)
                fresh.append((key, response.text))
            self.cache.put_all(fresh)
            for i, key in batch:
                answer = answers[i]
                assert answer is not None
                for j in repeats[key]:
                    answers[j] = Answer(questions[j], answer.text, answer.error,
                                        cached=answer.error is None)
                    self.counts["errors" if answer.error else "cached"] += 1
        if self._failed and self._failed == self.counts["asked"] \
                and self.counts["asked"] >= min(len(questions), self.batch_size):
            raise InputError(f"{self.backend.name}: every request of the {self.stage} stage "
                             f"failed; the first error: {self.first_error}")
        return [a for a in answers if a is not None]
