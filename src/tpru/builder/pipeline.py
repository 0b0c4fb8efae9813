"""`tpru build`: sources in, a finished dataset folder out.

The build runs in two passes inside ``<out>.partial/``:

1. Measure (parallel over episodes): read and filter every frame once, stage
   the kept frames' images, and append one record per episode to
   ``work/episodes.jsonl`` with thumbnails and embeddings in flat binary
   files beside it. This pass is the expensive one and is resumable: a
   record is only counted once its line is complete, so ``--resume`` picks up
   after the last finished episode.
2. Formulate (streaming, with the per-frame tables, the neighbour indexes
   and the probes' records in work files rather than in memory, so the
   driver's memory does not grow with the frames): group episodes that share
   images, assign splits, index embeddings per scenario and split, make the
   samples (on the engine's workers by partition when it has more
   than one CPU, `tpru.builder.partitions`), and write them per split in
   episode order while linking their images into ``images/``. Then the leakage
   check, ``build.json`` (written last) and a rename of the folder to
   ``<out>``: a folder named ``<out>`` is always a finished build.

Every random choice derives from the seed and the episode's id, so the same
inputs and seed give byte-identical output whatever ``--workers`` is and
whether the build was resumed.

Episode ids are unique within a build. With several sources, an episode whose
id an earlier source already gave is renamed ``<source name>/<id>`` (the
source's folder or file name, see `tpru.sources.source_labels`): two
recording folders that both hold ``ep000`` ... keep all their episodes, and
ids of a single source never change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tpru import __version__
from tpru.builder.candidates import NeighbourIndex, release
from tpru.builder.config import BuildConfig
from tpru.builder.drafts import CHUNK_EPISODES, episode_chunks
from tpru.builder.engine import Engine, open_engine, tally
from tpru.builder.episodes import EpisodeUse
from tpru.builder.formulate import Formulator
from tpru.builder.inputs import (
    RUNTIME_ONLY,
    STATE,
    check_ratios,
    check_resumable,
    check_target,
    config_fingerprint,
    iter_episodes,
)
from tpru.builder.model_stages import StagesResult, check_prompts, run_model_stages
from tpru.builder.partitions import by_episode, samples_in_order
from tpru.builder.probe_rules import ProbeItem
from tpru.builder.probes import ProbeLog, ShortcutError, leak_message, run_probes
from tpru.builder.split import JoinRule, check_leakage, distinct_images, plan_splits
from tpru.builder.split_report import split_report, warn_missing_scenarios
from tpru.builder.work import EMBEDDINGS, RECORDS, THUMBS, WORK, load_tables, read_done
from tpru.builder.worker import episodes_of, measure_shard
from tpru.config import to_dict
from tpru.dataset import BUILD_FILE, IMAGES_DIR, partial_folder, unfinished_build_note
from tpru.diagnostics import InputError, Skips
from tpru.files import write_text_atomic
from tpru.models import Backend, check_backend, open_backend
from tpru.progress import progress_bar
from tpru.records import BuildRecord
from tpru.schema import Episode
from tpru.sources import open_source
from tpru.sources.base import Source
from tpru.sources.video_readers import READERS

log = logging.getLogger("tpru")


@dataclass(frozen=True)
class BuildResult:
    """A finished build.

    Attributes:
        path: the dataset folder.
        info: what ``build.json`` holds.
        calls: per model stage, requests ``asked`` of the model, answered from the
            ``cached`` answers, and ``errors`` (empty without model stages). Not in
            build.json: a rebuild asks nothing and would otherwise differ.
        backend: the model stages' backend, still open (None without model
            stages), so that what runs next on the dataset with the same model
            (``tpru build``'s audit) does not load it again.
    """

    path: Path
    info: dict[str, Any]
    calls: dict[str, dict[str, int]] = field(default_factory=dict)
    backend: Backend | None = field(default=None, repr=False, compare=False)


def build(config: BuildConfig, *, resume: bool = False, overwrite: bool = False,
          show_progress: bool = True) -> BuildResult:
    """Build the dataset described by `config`; see the module docstring."""
    if not config.sources:
        raise InputError("no sources given (use --source KIND:PATH or 'sources:' in the config)")
    out = Path(os.path.abspath(config.out))
    partial = partial_folder(out)
    check_target(out, overwrite, config)
    skips = Skips(strict=config.strict)
    # Opening a source checks that it exists: fail before anything is written.
    options = {"video": to_dict(config.video), "sim": to_dict(config.sim),
               **config.source_options}
    sources = [(spec, open_source(spec, skips=skips, options=options))
               for spec in config.sources]
    if config.uses_model:
        assert config.model.name is not None
        check_backend(config.model.name, **config.model.options)
        check_prompts(config)
    check_ratios(config, skips)
    work = partial / WORK
    # A cluster that cannot be reached, or lacks CPUs, fails before anything is written.
    backend = None
    stages = None
    with open_engine(config) as engine:
        _start_work(partial, config_fingerprint(config), resume)
        engine_record = _measure_all(config, sources, options, work, skips, show_progress,
                                     engine)
        READERS.close()  # the video the last episode read here was held open for the next
        if config.uses_model:
            assert config.model.name is not None
            backend = open_backend(config.model.name, **config.model.options)
            stages = run_model_stages(config, work, work / RECORDS, backend=backend,
                                      show_progress=show_progress)
        try:
            info = _formulate_all(config, partial, skips, show_progress, stages, engine)
        finally:
            if stages is not None:
                stages.notes.close()  # the notes file, read by pass 2
    if engine_record is not None:
        info["engine"] = engine_record
    skips.log_warning_totals()
    if info["probes"]["leaks"]:
        raise ShortcutError(f"{leak_message(info['probes'])}; " + unfinished_build_note(
            partial, then="to write the dataset anyway, run the same command with --resume "
                          "probes.max_lift=null"))
    _finish(partial, out, info)
    return BuildResult(out, info, stages.calls if stages else {}, backend)


# ---------------------------------------------------------------- pass 1: measure


def _start_work(partial: Path, stamp: str, resume: bool) -> None:
    """A fresh work folder stamped with the config's fingerprint, or the one to resume."""
    if partial.exists() and resume:
        check_resumable(partial, stamp)
        log.info("resuming the build in %s", partial)
        return
    if resume:
        log.warning("nothing to resume in %s; starting a new build", partial)
    if partial.exists():
        log.warning("discarding the unfinished build in %s (use --resume to continue it)",
                    partial)
        shutil.rmtree(partial)
    (partial / WORK).mkdir(parents=True)
    (partial / STATE).write_text(json.dumps({"fingerprint": stamp}))


NODES = "nodes.tsv"
"""In the work folder: the node that measured each recorded episode and its frames, one
line per record, written just before it (for build.json's per-node counts)."""


def _measure_all(config: BuildConfig, sources: Sequence[tuple[str, Source]],
                 options: Mapping[str, Mapping[str, Any]], work: Path, skips: Skips,
                 show_progress: bool, engine: Engine) -> dict[str, Any] | None:
    """Pass 1 on `engine`; what build.json records of the engine (None for the local one)."""
    done, _, next_ordinal = read_done(work)
    stage = work / "frames"
    nodes = _trim_lines(work / NODES, next_ordinal)

    def listed(spec: str, source: Source) -> Iterator[Episode]:
        return episodes_of(engine, spec, source, options, skips)

    def pending() -> Iterator[tuple[Episode, int]]:
        ordinal = next_ordinal
        for episode in iter_episodes(config, sources, skips, listed=listed):
            if episode.id in done:
                continue
            yield episode, ordinal
            ordinal += 1

    with (work / RECORDS).open("ab") as records, (work / THUMBS).open("ab") as thumbs, \
            (work / EMBEDDINGS).open("ab") as embeddings, (work / NODES).open("a") as nodes_file, \
            progress_bar("reading frames", show=show_progress, unit="frames") as bar:
        if done:
            bar.note(f"{len(done)} episodes already done")
        if engine.record() is not None:
            bar.note(f"{engine.name}: {engine.describe()}")
        measured = engine.map(measure_shard, pending(), config, stage,
                              weight=lambda item: len(item[0].frames))
        for result, node in measured:
            record = result.record
            nodes.append((node, record["frames_read"]))
            nodes_file.write(f"{node}\t{record['frames_read']}\n")
            nodes_file.flush()
            if record["frames"]:
                record["embedding_dim"] = int(result.embeddings.shape[1])
                thumbs.write(np.ascontiguousarray(result.thumbs, np.uint8).tobytes())
                embeddings.write(np.ascontiguousarray(result.embeddings, np.float32).tobytes())
                thumbs.flush()
                embeddings.flush()
            records.write((json.dumps(record, sort_keys=True) + "\n").encode())
            records.flush()
            bar.advance(record["frames_read"])
    described = engine.record()
    if described is None:
        return None
    return {**described, "nodes": tally([n for n, _ in nodes], [f for _, f in nodes])}


def _trim_lines(path: Path, count: int) -> list[tuple[str, int]]:
    """The first `count` ``node<TAB>frames`` lines of `path`, the rest cut off.

    A line is written before its episode's record, so a build killed between
    the two leaves one line too many; a record without its line (a work folder
    from before this file) counts under ``unknown``.
    """
    lines: list[tuple[str, int]] = []
    if path.exists():
        for line in path.read_text().splitlines(keepends=True)[:count]:
            node, _, frames = line.rstrip("\n").partition("\t")
            if not line.endswith("\n") or not frames.isdigit():
                break
            lines.append((node, int(frames)))
    missing = count - len(lines)
    path.write_text("".join(f"{node}\t{frames}\n" for node, frames in lines))
    return [*lines, *[("unknown", 0)] * missing]


# ---------------------------------------------------------------- pass 2: formulate


def _formulate_all(config: BuildConfig, partial: Path, skips: Skips,
                   show_progress: bool, stages: StagesResult | None, engine: Engine
                   ) -> dict[str, Any]:
    work = partial / WORK
    loaded = load_tables(work, config, stages.notes if stages else {})
    episodes, table = loaded.episodes, loaded.table
    if not episodes:
        drops = loaded.frame_drops + loaded.episode_drops + skips.counts
        raise InputError(f"no usable episodes: every episode was skipped or dropped "
                         f"(drops: {dict(drops)})")
    rule = JoinRule(config.split.near_dup_hamming, config.filter.dup_pixel_diff,
                    config.split.join_min_frames)
    plan = plan_splits(table, episodes.ids, episodes.scenarios,
                       config.split.ratios, config.seed, rule, scratch=work)
    split_of = plan.split_of
    table.release()
    warn_missing_scenarios(plan, skips)

    # One exact index per scenario and split, on disk (see NeighbourIndex.on_disk).
    shards: dict[tuple[str, str], list[range]] = {}
    for e, scenario in enumerate(episodes.scenarios):
        shards.setdefault((split_of[e], scenario), []).append(episodes.rows(e))
    (work / "index").mkdir(exist_ok=True)
    indexes = {}
    for i, key in enumerate(sorted(shards)):
        indexes[key] = NeighbourIndex.on_disk(work / "index" / str(i), table.embeddings,
                                              shards[key])
        table.release()
    del shards

    # One row per distinct image: the images each split's samples use are marked on it.
    unique = distinct_images(table.digest, work / "images.S32", scratch=work)
    table.release()
    chunks = episode_chunks(split_of, episodes.scenarios, CHUNK_EPISODES)
    formulator = Formulator(config, table, split_of, episodes, indexes, chunks, scratch=work)
    # In a file, not in memory: the probes read it back after the last sample.
    probe_items = ProbeLog(work / "probes.jsonl")
    split_names = [s for s in config.split.ratios if s in set(split_of)]
    split_episodes = EpisodeUse(split_names, len(episodes))
    split_images = {s: np.zeros(len(unique), dtype=bool) for s in split_names}
    linked = np.zeros(len(unique), dtype=bool)
    counts: dict[str, Counter[str]] = {s: Counter() for s in split_names}
    handles = {s: (partial / f"{s}.jsonl").open("w", encoding="utf-8", newline="\n")
               for s in split_names}
    stage = work / "frames"
    samples = samples_in_order(formulator, engine, work, split_names,
                               notes=stages is not None, show_progress=show_progress)
    try:
        with progress_bar("writing samples", show=show_progress, unit="episodes",
                          total=len(episodes)) as bar:
            for e, episode_samples in by_episode(samples, len(episodes)):
                split = split_of[e]
                for line, sample in episode_samples:
                    handles[split].write(line + "\n")
                    counts[split][sample.task] += 1
                    item = ProbeItem.from_sample(sample, split)
                    if item is not None:
                        probe_items.add(item)
                    for episode_id in [sample.episode_id,
                                       *sample.meta.get("distractor_episodes", [])]:
                        split_episodes.mark(split, episodes.index(episode_id), episode_id)
                    # Read the images back from the sample: the check sees what is written.
                    names = [image.rsplit("/", 1)[1] for image in sample.images]
                    ids = np.searchsorted(unique, [name.split(".")[0].encode() for name in names])
                    split_images[split][ids] = True
                    release(unique)  # a lookup reads pages all over it
                    for name, image, i in zip(names, sample.images, ids.tolist(), strict=True):
                        if not linked[i]:
                            linked[i] = True
                            digest, ext = name.split(".")
                            _link(os.path.join(stage, digest[:2], f"{digest}.{ext}"),
                                  os.path.join(partial, image))  # stage_path's layout
                table.release()
                episodes.release()
                bar.advance(1)
    finally:
        for handle in handles.values():
            handle.close()
        probe_items.close()

    shared = check_leakage(split_episodes, split_images, unique, table, plan.episode_ids, rule,
                           scratch=work)

    examples = loaded.examples
    for reason, items in skips.examples.items():
        # A reason can be both a skipped input and a dropped frame (unreadable_video):
        # keep the examples of both.
        examples[reason] = [*items, *examples.get(reason, [])]
    config_data = {k: v for k, v in to_dict(config).items() if k not in RUNTIME_ONLY}
    # As a dict: build() reads it and hands it on as BuildResult.info.
    return BuildRecord(
        tpru_version=__version__,
        seed=config.seed,
        config=config_data,
        splits=tuple(split_names),
        counts={
            "episodes_kept": len(episodes),
            "episodes_dropped": sum(loaded.episode_drops.values()),
            "frames_read": loaded.frames_read,
            "frames_kept": len(table.digest),
            "images": int(linked.sum()),
            "samples": {s: dict(sorted(counts[s].items())) for s in split_names},
            "samples_total": sum(sum(c.values()) for c in counts.values()),
            "missing_asked_as_positive": formulator.missing_asked_as_positive,
            "missing_asked_as_mismatch": formulator.missing_asked_as_mismatch,
            "windows_by_frames": {str(n): c for n, c in
                                  sorted(formulator.windows_by_frames.items())},
            "windows_lengths_limited": formulator.lengths_limited,
            "episodes_by_split": {s: sum(1 for x in split_of if x == s) for s in split_names},
        },
        split_report=split_report(plan, shared),
        probes=run_probes(probe_items, max_lift=config.probes.max_lift,
                          min_samples=config.probes.min_samples),
        drops={
            "inputs": dict(sorted(skips.counts.items())),
            "frames": dict(sorted(loaded.frame_drops.items())),
            "episodes": dict(sorted(loaded.episode_drops.items())),
            "samples": dict(sorted(formulator.skipped.items())),
        },
        drop_examples={k: v for k, v in sorted(examples.items())},
        warnings=tuple(skips.warning_summary()),
        model_stages=stages.report if stages else None,
    ).to_dict()


def _link(source: str, target: str) -> None:
    # Strings, not Paths: pathlib interns every part of a path it parses, and a name per
    # image would keep growing the driver's memory with the dataset.
    if os.path.exists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


# ---------------------------------------------------------------- finish


def content_hash(root: Path) -> str:
    """SHA-256 over the split files' bytes and the image names (which are their hashes)."""
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.jsonl")):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    images = root / IMAGES_DIR
    if images.exists():
        for path in sorted(images.rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
    return "sha256:" + digest.hexdigest()


def _finish(partial: Path, out: Path, info: dict[str, Any]) -> None:
    # The state goes first: a build killed while its work files are half deleted must
    # not look resumable.
    (partial / STATE).unlink()
    shutil.rmtree(partial / WORK)
    record = replace(BuildRecord.from_dict(info, str(partial / BUILD_FILE)),
                     content_hash=content_hash(partial))
    info.update(record.to_dict())  # BuildResult.info: what build.json holds
    write_text_atomic(partial / BUILD_FILE, record.dumps())
    if out.exists():  # a dataset --overwrite replaces, or an empty folder
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old)
    else:
        os.replace(partial, out)
    log.info("wrote %s", out)

