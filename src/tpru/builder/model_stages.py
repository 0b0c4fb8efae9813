"""The model-in-the-loop stages of a build: a judge that filters episodes, and descriptions.

The paper has a large VLM keep the sequences "in clear chronological order"
and write their descriptions. Here any backend does it (``model.name``),
between pass 1 (frames read and filtered) and pass 2 (samples written):

- judge (``judge.enabled``): shown up to ``model.max_images`` of an episode's
  kept frames, the model answers whether they show one clear process with
  meaningful change. "no" drops the episode (``judge_rejected``); an answer
  that is neither, or a failed request, keeps or drops it by
  ``judge.on_unclear`` (``judge_unclear``).
- describe (``describe.mode``): the model writes the process as a gerund
  phrase ("Process: stacking ...") and a caption per shown frame ("Step 1:
  ..."); then, given that description, a plausible description of a process
  the frames do not show ("Wrong process: ..."), refused when its words
  overlap the positive's by more than ``describe.max_overlap``; and
  optionally paraphrases of the description.

Every answer is cached by content (see `tpru.builder.model_calls`), so a
rebuild asks nothing twice, and the stages' results are a pure function of
the cached answers: the build stays byte-identical. That holds as well when
the requests are spread over several servers (``model.options.base_url`` a
list, see `tpru.models.openai_pool`): answers are cached and used in question
order, whichever server gave them. Decisions and refusals are counted in
``build.json`` under ``model_stages``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from tpru.builder.config import BuildConfig
from tpru.builder.describe import clean_description, normalise_text
from tpru.builder.episode_notes import NOTES, EpisodeNotes, NotesFile
from tpru.builder.measure import stage_path
from tpru.builder.model_answers import (
    parse_description,
    parse_negative,
    parse_paraphrases,
    parse_verdict,
    word_overlap,
)
from tpru.builder.model_calls import ModelCaller, Question, fill_prompt, image_lines, read_prompt
from tpru.diagnostics import InputError
from tpru.models import Backend, open_backend
from tpru.paths import MODEL_CALLS_CACHE, cache_dir
from tpru.progress import progress_bar

SCENARIO_WORDS = {"robot": "robot manipulation", "lego": "LEGO assembly",
                  "gui": "operating a graphical user interface", "nav": "embodied navigation"}
"""How a prompt names a scenario; other scenarios are named as they are."""

CHUNK_BATCHES = 2
"""Episodes are handled this many backend batches at a time (every stage of a chunk, then
the next), so the progress bar moves often even with a slow model."""



@dataclass
class StagesResult:
    """The notes per episode id (in a file), the deterministic counts for build.json, and
    the call counts."""

    notes: NotesFile
    report: dict[str, Any]
    calls: dict[str, dict[str, int]]


@dataclass(frozen=True)
class _Episode:
    id: str
    scenario: str
    description: str | None
    positions: tuple[int, ...]
    images: tuple[str, ...]
    digests: tuple[str, ...]


# ---------------------------------------------------------------- the stages


def run_model_stages(config: BuildConfig, work: Path, records: Path, *,
                     backend: Backend | None = None, show_progress: bool = True
                     ) -> StagesResult:
    """Judge and describe the episodes pass 1 kept (records in `records`, frames staged
    under ``work/frames``) with `backend` (None: open ``model.name``); see the module
    docstring."""
    mcfg = config.model
    assert mcfg.name is not None  # BuildConfig refuses model stages without a model
    if backend is None:
        backend = open_backend(mcfg.name, **mcfg.options)
    cache = Path(mcfg.cache) if mcfg.cache else cache_dir(MODEL_CALLS_CACHE)

    def caller(stage: str) -> ModelCaller:
        return ModelCaller(backend, spec=mcfg.name or "", options=mcfg.options,
                           cache_dir=cache, stage=stage, batch_size=mcfg.batch_size,
                           max_new_tokens=mcfg.max_new_tokens)

    stages = _Stages(config, caller)
    notes = NotesFile(work / NOTES)
    total = sum(1 for _ in _kept_records(records))
    episodes = _kept_episodes(records, work / "frames", mcfg.max_images)
    with progress_bar(f"asking {mcfg.name}", show=show_progress, unit="episodes",
                      total=total) as bar:
        while chunk := list(islice(episodes, CHUNK_BATCHES * mcfg.batch_size)):
            notes.extend(stages.run(chunk))
            bar.advance(len(chunk))
    return StagesResult(notes, stages.report(), stages.calls())


def _kept_records(records: Path) -> Iterator[dict[str, Any]]:
    """Pass 1's records of the episodes it kept, streamed."""
    with records.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if not record["dropped"] and record["frames"]:
                yield record


def _kept_episodes(records: Path, stage: Path, max_images: int) -> Iterator[_Episode]:
    for record in _kept_records(records):
        frames = record["frames"]
        shown = _spread(len(frames), max_images)
        episode = record["episode"]
        yield _Episode(
            id=episode["id"], scenario=episode["scenario"],
            description=episode.get("description") or None,
            positions=tuple(frames[i]["index"] for i in shown),
            images=tuple(str(stage_path(stage, frames[i]["digest"], frames[i]["ext"]))
                         for i in shown),
            digests=tuple(frames[i]["digest"] for i in shown))


def _spread(n: int, most: int) -> list[int]:
    """Up to `most` indices spread evenly over range(n), first and last included."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


class _Stages:
    """The judge and describe stages over chunks of episodes, with their counts."""

    def __init__(self, config: BuildConfig, caller: Callable[[str], ModelCaller]) -> None:
        self.config = config
        self.judge = caller("judge") if config.judge.enabled else None
        dcfg = config.describe
        self.describe = caller("describe") if dcfg.mode != "never" else None
        self.negative = caller("negative") if dcfg.mode != "never" and dcfg.negatives else None
        self.paraphrase = caller("paraphrase") if dcfg.mode != "never" and dcfg.paraphrases \
            else None
        self.sources = prompt_files(config)
        self.prompts = {stage: read_prompt(path, stage) for stage, path in self.sources.items()}
        self.counts: dict[str, Counter[str]] = {"judge": Counter(), "describe": Counter()}

    def run(self, chunk: Sequence[_Episode]) -> dict[str, EpisodeNotes]:
        notes = {episode.id: EpisodeNotes() for episode in chunk}
        if self.judge is not None:
            self._judge(chunk, notes)
        if self.describe is not None:
            kept = [e for e in chunk if notes[e.id].drop is None]
            self._describe(kept, notes)
        return notes

    def _values(self, stage: str, episode: _Episode, **extra: str) -> dict[str, str]:
        values = {"images": image_lines(len(episode.images)), "n": str(len(episode.images)),
                  "scenario": SCENARIO_WORDS.get(episode.scenario, episode.scenario), **extra}
        return {k: values[k] for k in PLACEHOLDERS[stage]}

    def _question(self, stage: str, episode: _Episode, *, images: bool = True,
                  **extra: str) -> Question:
        prompt = fill_prompt(self.prompts[stage], self._values(stage, episode, **extra),
                             where=self.sources[stage] or f"the built-in {stage} prompt")
        if not images:
            return Question(episode.id, prompt)
        return Question(episode.id, prompt, episode.images, episode.digests)

    def _judge(self, chunk: Sequence[_Episode], notes: dict[str, EpisodeNotes]) -> None:
        assert self.judge is not None
        counts = self.counts["judge"]
        on_unclear = self.config.judge.on_unclear
        for answer in self.judge.ask([self._question("judge", e) for e in chunk]):
            verdict = None if answer.error else parse_verdict(answer.text)
            note = notes[answer.question.episode]
            said = answer.error or " ".join(answer.text.split())[:160]
            if verdict is True:
                counts["kept"] += 1
            elif verdict is False:
                counts["rejected"] += 1
                note.drop = "judge_rejected"
                note.message = f"episode {answer.question.episode}: the judge said {said!r}"
            else:
                counts["errors" if answer.error else "unclear"] += 1
                if on_unclear == "drop":
                    note.drop = "judge_unclear"
                    note.message = (f"episode {answer.question.episode}: no yes or no in "
                                    f"the judge's answer {said!r}")

    def _describe(self, episodes: Sequence[_Episode], notes: dict[str, EpisodeNotes]) -> None:
        assert self.describe is not None
        dcfg = self.config.describe
        counts = self.counts["describe"]
        todo = {e.id: e for e in episodes if dcfg.mode == "always" or not e.description}
        counts["kept_source"] += len(episodes) - len(todo)
        for answer in self.describe.ask([self._question(
                "describe", e, captions=self._caption_request(len(e.images)))
                for e in todo.values()]):
            episode = todo[answer.question.episode]
            description, captions = parse_description(answer.text)
            note = notes[episode.id]
            if description is None:
                counts["errors" if answer.error else "unparsed"] += 1
            else:
                counts["described"] += 1
                note.description = description
            if dcfg.captions:
                note.captions = {episode.positions[k - 1]: text for k, text in captions.items()
                                 if 1 <= k <= len(episode.positions)}
                counts["captions"] += len(note.captions)
        described = [(e, d) for e in episodes
                     if (d := notes[e.id].description or e.description)]
        if self.negative is not None:
            self._negatives(described, notes)
        if self.paraphrase is not None:
            self._paraphrases(described, notes)

    def _caption_request(self, count: int) -> str:
        if not self.config.describe.captions:
            return ""
        return (f'Then write one line per frame, from "Step 1: " to "Step {count}: ", each '
                "saying briefly what that frame shows.")

    def _negatives(self, described: Sequence[tuple[_Episode, str]],
                   notes: dict[str, EpisodeNotes]) -> None:
        assert self.negative is not None
        counts = self.counts["describe"]
        limit = self.config.describe.max_overlap
        positives = {e.id: d for e, d in described}
        questions = [self._question("negative", e, description=clean_description(d))
                     for e, d in described]
        for answer in self.negative.ask(questions):
            positive = positives[answer.question.episode]
            negative = parse_negative(answer.text)
            if negative is None:
                counts["negatives_unparsed"] += 1
            elif normalise_text(negative) == normalise_text(positive) \
                    or word_overlap(negative, positive) > limit:
                counts["negatives_too_close"] += 1
            else:
                counts["negatives"] += 1
                notes[answer.question.episode].negative = negative

    def _paraphrases(self, described: Sequence[tuple[_Episode, str]],
                     notes: dict[str, EpisodeNotes]) -> None:
        assert self.paraphrase is not None
        counts = self.counts["describe"]
        wanted = self.config.describe.paraphrases
        positives = {e.id: d for e, d in described}
        questions = [self._question("paraphrase", e, images=False,
                                    description=clean_description(d), count=str(wanted))
                     for e, d in described]
        for answer in self.paraphrase.ask(questions):
            positive = positives[answer.question.episode]
            seen = {normalise_text(positive)}
            kept: list[str] = []
            for phrase in parse_paraphrases(answer.text):
                key = normalise_text(phrase)
                if key not in seen and len(kept) < wanted:
                    seen.add(key)
                    kept.append(phrase)
            counts["paraphrases"] += len(kept)
            notes[answer.question.episode].paraphrases = tuple(kept)

    def report(self) -> dict[str, Any]:
        """The deterministic counts for build.json (no cache hits: those vary by run)."""
        report: dict[str, Any] = {"model": self.config.model.name}
        for stage in ("judge", "describe"):
            if getattr(self, stage) is not None:
                report[stage] = {k: v for k, v in sorted(self.counts[stage].items()) if v}
        return report

    def calls(self) -> dict[str, dict[str, int]]:
        callers = {"judge": self.judge, "describe": self.describe, "negative": self.negative,
                   "paraphrase": self.paraphrase}
        return {name: {k: c.counts[k] for k in ("asked", "cached", "errors")}
                for name, c in callers.items() if c is not None}


def prompt_files(config: BuildConfig) -> dict[str, str | None]:
    """The prompt file of each stage that runs (None: the built-in prompt)."""
    dcfg = config.describe
    files: dict[str, str | None] = {}
    if config.judge.enabled:
        files["judge"] = config.judge.prompt
    if dcfg.mode != "never":
        files["describe"] = dcfg.prompt
        if dcfg.negatives:
            files["negative"] = dcfg.negative_prompt
        if dcfg.paraphrases:
            files["paraphrase"] = dcfg.paraphrase_prompt
    return files


PLACEHOLDERS = {
    "judge": ("images", "n", "scenario"),
    "describe": ("images", "n", "scenario", "captions"),
    "negative": ("images", "n", "scenario", "description"),
    "paraphrase": ("description", "count"),
}
"""The placeholders each stage's prompt may use."""


def check_prompts(config: BuildConfig) -> None:
    """Read and fill the configured prompt files now, so a bad one fails before any work.

    Raises:
        InputError: a file that cannot be read, an unknown placeholder, or a prompt
            about images without ``{images}``.
    """
    example = {"images": image_lines(2), "n": "2", "scenario": "robot manipulation",
               "description": "stacking the red block", "count": "2", "captions": ""}
    for stage, path in prompt_files(config).items():
        where = path or f"the built-in {stage} prompt"
        text = read_prompt(path, stage)
        fill_prompt(text, {k: example[k] for k in PLACEHOLDERS[stage]}, where=where)
        if "images" in PLACEHOLDERS[stage] and "{images}" not in text:
            raise InputError(f"{where}: the {stage} prompt must say where the frames go "
                             "with {images}")
