"""Pass 2's per-episode work: choose windows, decide negatives, call the formulators.

A `Formulator` holds what the choices need across the dataset (the letter
balancer, the pool of descriptions for negatives, the neighbour indexes)
and turns one kept episode into its samples. Its random choices come from a
generator seeded by the build seed and the episode id, so an episode's
samples do not depend on which other episodes were built.

What carries over from one episode to the next (the letter balancer's
blocks, the turns of ``tasks.ordering_forms``) is kept per *partition*: a
split, a scenario and a chunk of their episodes in order
(`tpru.builder.drafts.episode_chunks`). An episode's samples depend
only on the earlier episodes of its own partition. So partitions can be
formulated apart, on different workers (`tpru.builder.partitions`), and give
the bytes they give in one process, as long as each partition's episodes are
taken in order; and a build whose episodes are all of one scenario (a robot
dataset) still has a partition per few hundred episodes to spread.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tpru.builder.candidates import DistractorPolicy, FrameTable, NeighbourIndex, pick_distractors
from tpru.builder.config import BuildConfig
from tpru.builder.describe import DescriptionPool, description_sentence
from tpru.builder.difficulty import difficulty_record
from tpru.builder.drafts import (
    Draft,
    Episodes,
    KeptEpisode,
    Twin,
    choose_windows,
    seeded,
)
from tpru.builder.lengths import window_lengths
from tpru.builder.tasks import (
    FORMULATORS,
    Header,
    ImageChoiceTask,
    LetterBalancer,
    OrderTask,
    distractors_needed,
)
from tpru.schema import IMAGE_OPTION, NONE_OPTION, Sample

POOL_FILE = "descriptions.sqlite"
"""The pool of descriptions in the work folder."""


class Formulator:
    """Makes the samples of each kept episode (see the module docstring)."""

    def __init__(self, config: BuildConfig, table: FrameTable,
                 split_of: Sequence[str], episodes: Episodes,
                 indexes: Mapping[tuple[str, str], NeighbourIndex], chunks: np.ndarray,
                 *, scratch: Path | None = None, pool: DescriptionPool | None = None) -> None:
        """`chunks`: each episode's chunk (`episode_chunks`). `scratch`: a folder for
        the pool of descriptions (in memory if None), made here from `episodes` unless
        the `pool` made for them is given (on a worker)."""
        self.config = config
        self.table = table
        self.split_of = split_of
        self.episodes = episodes
        self.chunks = chunks
        self.indexes = indexes
        self.balancer = LetterBalancer(config.seed)
        if pool is None:
            pool = DescriptionPool(None if scratch is None else scratch / POOL_FILE)
            pool.extend((split_of[e], ep.scenario, ep.description)
                        for e, ep in ((e, episodes[e]) for e in range(len(episodes)))
                        if ep.description)
            pool.finish()
        self.pool = pool
        self.policy = DistractorPolicy(config.tasks.same_episode_distractors,
                                       config.split.near_dup_hamming,
                                       config.filter.dup_pixel_diff)
        self.candidates = config.tasks.candidate_counts
        """Task -> image or order choices besides None."""
        self.length_weights = config.tasks.length_weights
        """Window length -> weight (``tasks.frames_per_sample``), read once."""
        self.windows_by_frames: Counter[int] = Counter()
        self.lengths_limited = 0
        """Windows whose episode was too short for some of ``tasks.frames_per_sample``."""
        self.skipped: Counter[str] = Counter()
        self.missing_asked_as_positive = 0
        """``missing`` negatives with no own frame to stand in for the truth, asked as
        positives (``mismatch`` not in use, or no other description)."""
        self.missing_asked_as_mismatch = 0
        """``missing`` negatives with no own frame to stand in for the truth, asked as
        ``mismatch`` negatives."""
        self._form_turns: dict[tuple[str, str, int, str], int] = {}
        """Order samples so far per partition and task (from a seeded start), to use
        ``tasks.ordering_forms`` in turn."""

    COUNTS = ("windows_by_frames", "lengths_limited", "skipped", "missing_asked_as_positive",
              "missing_asked_as_mismatch")
    """The attributes that count what happened, summed over workers (`counts`, `add`)."""

    def counts(self) -> dict[str, Any]:
        """What this formulator counted, to send back from a worker."""
        return {name: getattr(self, name) for name in self.COUNTS}

    def add(self, counts: Mapping[str, Any]) -> None:
        """Add what another formulator counted (`counts`) to these counts."""
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + counts[name])

    def samples_for(self, e: int) -> Iterator[Sample]:
        """The samples of kept episode `e`, in a fixed order (a twin after its negative)."""
        episode = self.episodes[e]
        tcfg = self.config.tasks
        rng = seeded(self.config.seed, episode.id)
        rows = list(episode.rows)
        # Lengths from their own generator: a plain frames_per_sample draws nothing.
        lengths, limited = window_lengths(self.length_weights, len(rows),
                                          tcfg.windows_per_episode,
                                          seeded(self.config.seed, episode.id, "lengths"))
        for w, positions in enumerate(choose_windows(len(rows), lengths, rng)):
            window = [rows[p] for p in positions]
            self.windows_by_frames[len(window)] += 1
            self.lengths_limited += limited
            for task in tcfg.tasks:
                yield from self._samples(e, w, task, window, rng)

    def _samples(self, e: int, w: int, task: str, window: list[int], rng: random.Random
                 ) -> list[Sample]:
        """The sample of one window and task, and its positive twin where one is due."""
        spec = FORMULATORS[task]
        episode = self.episodes[e]
        split = self.split_of[e]
        header = Header(f"{episode.id}/w{w}/{task}", episode.scenario, episode.id)
        frames = [self.table.image(r) for r in window]
        wording = 0
        if rng.random() < self.config.text.question_paraphrase_rate:
            wording = rng.randrange(1, spec.wordings)
        meta: dict[str, Any] = {
            "split": split,
            "window": [int(self.table.position[r]) for r in window],
            "frames": len(window),
        }
        if episode.captions:
            meta["captions"] = [episode.captions.get(p) for p in meta["window"]]
        partition = (split, episode.scenario, int(self.chunks[e]))
        if isinstance(spec, OrderTask) and self._next_form(partition, task) == "letters":
            intro = self._intro(episode.description, rng, meta, episode.paraphrases)
            return [self._rated(spec.letters(header, frames, intro, rng=rng, wording=wording,
                                             meta=meta))]
        kind, shown_description = self._negative(episode, split, rng)
        intro = self._intro(shown_description, rng, meta,
                            episode.paraphrases if kind != "mismatch" else ())
        if kind == "mismatch":
            self._note_mismatch(meta, episode, shown_description)
        twin = Twin(f"{header.id}/twin", seeded(self.config.seed, header.id, "twin")) \
            if kind is not None and split in self.config.tasks.twins else None
        if twin is not None:
            meta["twin"] = twin.id
        draft = Draft(task, split, partition, header, frames, intro, wording, meta)
        if isinstance(spec, OrderTask):
            return self._order_samples(spec, draft, episode, kind, twin, rng)
        return self._choice_samples(spec, draft, episode, window, kind, twin, rng)

    def _next_form(self, partition: tuple[str, str, int], task: str) -> str:
        """The form of an order task's next sample: ``tasks.ordering_forms`` in turn within
        the partition, from a seeded start (a partition with one such sample would
        otherwise always get the first form)."""
        forms = self.config.tasks.ordering_forms
        key = (*partition, task)
        if key not in self._form_turns:
            self._form_turns[key] = seeded(self.config.seed, *key, "form").randrange(len(forms))
        turn = self._form_turns[key]
        self._form_turns[key] = turn + 1
        return forms[turn % len(forms)]

    def _gold(self, draft: Draft) -> int:
        """The gold position of the draft's next sample, balanced within its partition."""
        candidates = self.candidates[draft.task]
        return self.balancer.draw((*draft.partition, draft.task), candidates + 1)

    def _order_samples(self, spec: OrderTask, draft: Draft, episode: KeptEpisode,
                       kind: str | None, twin: Twin | None, rng: random.Random
                       ) -> list[Sample]:
        """An order sample with options, and its positive twin where one is due."""
        candidates = self.candidates[draft.task]
        gold = self._gold(draft)
        state = rng.getstate()
        sample = self._rated(spec.options(draft.header, draft.frames, draft.intro,
                                          candidates=candidates, gold=gold, negative_kind=kind,
                                          rng=rng, wording=draft.wording, meta=draft.meta))
        if twin is None:
            return [sample]
        return [sample, self._order_twin(spec, draft, sample, twin, episode, state)]

    def _choice_samples(self, spec: ImageChoiceTask, draft: Draft, episode: KeptEpisode,
                        window: list[int], kind: str | None, twin: Twin | None,
                        rng: random.Random) -> list[Sample]:
        """An image-choice sample, and its positive twin where one is due; none when too
        few distractors are found."""
        split, meta = draft.split, draft.meta
        candidates = self.candidates[draft.task]
        truth = window[spec.truth]
        chosen = self._distractors(draft.task, episode, split, truth, window, kind, rng)
        if chosen is None and kind == "missing":
            # No frame of this episode can stand in for the truth (a long window uses them
            # up): make it a mismatch negative where one can be, so the share of negatives
            # does not depend on the window's length, which the question shows; else ask it
            # as a positive.
            intro = self._mismatch_intro(episode, split, rng, meta)
            if intro is not None:
                self.missing_asked_as_mismatch += 1
                kind, draft = "mismatch", replace(draft, intro=intro)
            else:
                self.missing_asked_as_positive += 1
                kind, twin = None, None
                meta.pop("twin", None)
            chosen = self._distractors(draft.task, episode, split, truth, window, kind, rng)
        if chosen is None:
            self.skipped["not_enough_distractors"] += 1
            return []
        # Drawn only for a sample that is written, so the letters stay balanced.
        gold = self._gold(draft)
        sample = self._image_sample(spec, draft.header, draft.frames, truth, chosen,
                                    draft.intro, gold, kind, rng, draft.wording, meta,
                                    candidates)
        if twin is None:
            return [sample]
        if kind == "missing":  # the truth takes the place of an own-episode stand-in
            stand_in = next(r for r in chosen
                            if self.table.episode[r] == self.table.episode[truth])
            chosen = [r for r in chosen if r != stand_in]
        twin_meta = self._twin_meta(meta, sample.id)
        intro = draft.intro
        if kind == "mismatch":
            intro = self._intro(episode.description, twin.rng, twin_meta, episode.paraphrases)
        gold = self._gold(draft)
        twin_header = Header(twin.id, draft.header.scenario, draft.header.episode_id)
        return [sample, self._image_sample(spec, twin_header, draft.frames, truth, chosen,
                                           intro, gold, None, twin.rng, draft.wording,
                                           twin_meta, candidates)]

    def _distractors(self, task: str, episode: KeptEpisode, split: str, truth: int,
                     window: list[int], kind: str | None, rng: random.Random
                     ) -> list[int] | None:
        return pick_distractors(self.table, truth, window, list(episode.rows),
                                self.indexes.get((split, episode.scenario)),
                                distractors_needed(self.candidates[task], kind),
                                self.policy, rng, missing=kind == "missing")

    def _image_sample(self, spec: ImageChoiceTask, header: Header, frames: list[str], truth: int,
                      chosen: list[int], intro: str, gold: int, kind: str | None,
                      rng: random.Random, wording: int, meta: dict[str, Any],
                      candidates: int) -> Sample:
        """A next/previous-frame sample, with where each candidate came from and its
        difficulty in meta."""
        table = self.table
        meta = {**meta,
                "distractors": [{"episode": self.episodes[int(table.episode[r])].id,
                                 "frame": int(table.position[r])} for r in chosen]}
        meta["distractor_episodes"] = sorted({d["episode"] for d in meta["distractors"]})
        sample = spec.formulate(header, frames, [table.image(r) for r in chosen], intro,
                                candidates=candidates, gold=gold,
                                negative_kind=kind, rng=rng, wording=wording, meta=meta)
        row_of = {table.image(r): r for r in (truth, *chosen)}
        images = iter(sample.option_images)
        provenance = [None if option != IMAGE_OPTION else self._provenance(row_of[next(images)])
                      for option in sample.options or ()]
        sample = replace(sample, meta={**sample.meta, "candidates": provenance})
        hardest = max(float(np.dot(table.embeddings[r], table.embeddings[truth]))
                      for r in chosen)
        return self._rated(sample, hardest)

    @staticmethod
    def _rated(sample: Sample, similarity: float | None = None) -> Sample:
        """`sample` with its ``meta.difficulty`` (see `tpru.builder.difficulty`)."""
        record = difficulty_record(sample.meta["window"], sample.meta["negative_kind"],
                                   similarity)
        return replace(sample, meta={**sample.meta, "difficulty": record})

    def _provenance(self, row: int) -> dict[str, Any]:
        episode = self.episodes[int(self.table.episode[row])]
        return {"episode": episode.id, "frame": int(self.table.position[row]),
                "scenario": episode.scenario}

    def _order_twin(self, spec: OrderTask, draft: Draft, negative: Sample, twin: Twin,
                    episode: KeptEpisode, state: tuple[Any, ...]) -> Sample:
        """The positive twin of an order negative: the same images in the same shuffle,
        the negative's orders when the truth was among them (``mismatch``, then with the
        true description), a new set with it otherwise (``missing``, the same text)."""
        same = random.Random()
        same.setstate(state)  # the negative's generator before it shuffled the images
        meta = self._twin_meta(negative.meta, negative.id)
        orders = None
        intro = draft.intro
        if negative.meta["negative_kind"] == "mismatch":
            orders = [o for o in negative.options or () if o != NONE_OPTION]
            intro = self._intro(episode.description, twin.rng, meta, episode.paraphrases)
        candidates = self.candidates[draft.task]
        gold = self._gold(draft)
        sample = spec.options(Header(twin.id, negative.scenario, negative.episode_id),
                              draft.frames, intro, candidates=candidates, gold=gold,
                              negative_kind=None, rng=same, wording=draft.wording, meta=meta,
                              orders=orders)
        if sample.images != negative.images:  # pragma: no cover - same state, same shuffle
            raise AssertionError("a twin must show the images of its negative")
        return self._rated(sample)

    @staticmethod
    def _twin_meta(meta: Mapping[str, Any], negative_id: str) -> dict[str, Any]:
        """The negative's meta for its twin: the same window, linked back, no negative's text."""
        twin = {k: v for k, v in meta.items()
                if k not in ("twin", "shown_description", "negative_source", "distractors",
                             "distractor_episodes", "candidates", "difficulty")}
        twin["twin"] = negative_id
        return twin

    def _intro(self, description: str | None, rng: random.Random, meta: dict[str, Any],
               paraphrases: Sequence[str] = ()) -> str:
        """The description sentence; with model `paraphrases`, one of them replaces the
        description at ``text.paraphrase_rate`` (recorded in ``meta.description_paraphrase``)."""
        if not description:
            meta["description_template"] = None
            return ""
        if paraphrases:
            chosen = None
            if rng.random() < self.config.text.paraphrase_rate:
                chosen = rng.randrange(len(paraphrases))
                description = paraphrases[chosen]
            meta["description_paraphrase"] = chosen
        sentence, template = description_sentence(description, rng,
                                                  self.config.text.paraphrase_rate)
        meta["description_template"] = template
        return sentence

    def _mismatch_intro(self, episode: KeptEpisode, split: str, rng: random.Random,
                        meta: dict[str, Any]) -> str | None:
        """The intro of a mismatch negative in place of a `missing` one that cannot be made
        (its shown description recorded in `meta`), or None where mismatch is not a kind
        in use or there is no description to show."""
        if "mismatch" not in self.config.tasks.negative_kinds or not episode.description:
            return None
        shown = self._other_description(episode, split, rng)
        if shown is None:
            return None
        self._note_mismatch(meta, episode, shown)
        # The first intro may have drawn a paraphrase of the episode's own description:
        # it is not what this one shows.
        meta.pop("description_paraphrase", None)
        return self._intro(shown, rng, meta)

    def _other_description(self, episode: KeptEpisode, split: str, rng: random.Random
                           ) -> str | None:
        """What a mismatch negative shows: the model's negative description of the
        episode, else another episode's of its scenario and split (None: there is none)."""
        return episode.negative or self.pool.negative_for(split, episode.scenario,
                                                          episode.description, rng)

    @staticmethod
    def _note_mismatch(meta: dict[str, Any], episode: KeptEpisode, shown: str | None) -> None:
        """Record in `meta` the description a mismatch negative shows, and whose it is."""
        meta["shown_description"] = shown
        if episode.negative and shown == episode.negative:
            meta["negative_source"] = "model"

    def _negative(self, episode: KeptEpisode, split: str, rng: random.Random
                  ) -> tuple[str | None, str | None]:
        """The negative kind (None for a positive) and the description to show."""
        tcfg = self.config.tasks
        if tcfg.negative_rate <= 0 or rng.random() >= tcfg.negative_rate:
            return None, episode.description
        kinds = list(tcfg.negative_kinds)
        if not episode.description and "mismatch" in kinds:
            # Without its own description a positive sample has no text, so a text in a
            # negative one would give the answer away.
            kinds.remove("mismatch")
        if not kinds:
            self.skipped["negative_impossible"] += 1
            return None, episode.description
        kind = rng.choice(kinds)
        if kind == "mismatch":
            other = self._other_description(episode, split, rng)
            if other is not None:
                return kind, other
            self.skipped["no_other_description"] += 1
            if "missing" not in kinds:
                return None, episode.description
            kind = "missing"
        return kind, episode.description

