"""What a build reads and where it writes, checked before any work: the output folder
(never over or inside a source, never over anything but a dataset), the fingerprint that
lets ``--resume`` continue only the same build, and the episodes of every source in turn
with their ids made unique (see `tpru.builder.pipeline`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from tpru import __version__
from tpru.builder.config import BuildConfig
from tpru.config import to_dict
from tpru.dataset import BUILD_FILE, STATE_FILE
from tpru.diagnostics import InputError, Skips
from tpru.files import check_output_folder
from tpru.schema import SCHEMA_VERSION, Episode
from tpru.sources import source_labels
from tpru.sources.base import Source

STATE = STATE_FILE
"""The file in ``DIR.partial`` that holds the build's fingerprint (named where
`tpru.dataset` recognises an unfinished build)."""

RUNTIME_ONLY = ("out", "workers", "engine", "ray", "strict")
"""Config fields that never change a finished build's output, left out of ``build.json``."""


def check_target(out: Path, overwrite: bool, config: BuildConfig) -> None:
    """Refuse an --out that overlaps a source folder, or holds anything but a dataset."""
    inputs = [path for spec in config.sources
              for kind, _, path in [spec.partition(":")] if path and kind != "sim"]
    check_output_folder(out, kind="dataset", overwrite=overwrite, inputs=inputs,
                        written_by=lambda folder: (folder / BUILD_FILE).is_file())


def check_ratios(config: BuildConfig, skips: Skips) -> None:
    """Warn when ``split.ratios`` do not sum to 1: they are used as proportions."""
    ratios = config.split.ratios
    total = sum(ratios.values())
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        shares = ", ".join(f"{name} {value / total:.3g}" for name, value in ratios.items())
        skips.warn("split.ratios", f"split.ratios sum to {total:g}, not 1; they are used "
                   f"as proportions of it: {shares}")


CHECKS_ONLY = ("probes",)
"""Config fields that only decide whether a finished build passes: a build that failed them
resumes under new values (``--resume probes.max_lift=null``)."""


def config_fingerprint(config: BuildConfig) -> str:
    """A SHA-256 of what decides a build's output: a ``--resume`` continues only the same one.

    Settings that change how a build runs but not what it writes, and the
    checks a finished build must pass, are left out (`RUNTIME_ONLY`, `CHECKS_ONLY`).
    """
    data = {k: v for k, v in to_dict(config).items()
            if k not in RUNTIME_ONLY and k not in CHECKS_ONLY}
    # Resolved, so a resume from another directory cannot read other data unnoticed.
    data["sources"] = [_resolved_spec(spec) for spec in config.sources]
    blob = json.dumps({"config": data, "schema": SCHEMA_VERSION, "version": __version__},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _resolved_spec(spec: str) -> str:
    kind, _, path = spec.partition(":")
    if not path or kind == "sim":  # sim:robot names a simulator, not a path
        return spec
    return f"{kind}:{Path(path).resolve()}"


def check_resumable(partial: Path, fingerprint: str) -> None:
    try:
        state = json.loads((partial / STATE).read_text())
    except (OSError, ValueError):
        raise InputError(f"{partial}: cannot resume, its {STATE} is missing or damaged; "
                         "run without --resume to start over") from None
    if state.get("fingerprint") != fingerprint:
        raise InputError(f"{partial}: cannot resume, it was started with a different "
                         "configuration or tpru version; run without --resume to start over")


def iter_episodes(config: BuildConfig, sources: Sequence[tuple[str, Source]], skips: Skips,
                  listed: Callable[[str, Source], Iterable[Episode]] | None = None
                  ) -> Iterator[Episode]:
    """The sources' episodes in turn, with ids made unique (the rule: `tpru.builder.pipeline`).

    Args:
        listed: a source's episodes (default: its ``iter_episodes``); the build's
            makes a split source's episodes on its workers (`tpru.builder.worker`).
    """
    specs = [spec for spec, _ in sources]
    labels = source_labels(specs)
    owner: dict[str, int] = {}  # episode id -> the source that gave it
    for s, (spec, source) in enumerate(sources):
        episodes = listed(spec, source) if listed else source.iter_episodes()
        for episode in episodes:
            if config.scenario:
                episode = replace(episode, scenario=config.scenario)
            first = owner.get(episode.id)
            if first == s:
                skips.skip("duplicate_id", f"{spec}: episode id {episode.id!r} appears more "
                           "than once in this source")
                continue
            if first is not None:
                renamed = f"{labels[s]}/{episode.id}"
                if renamed in owner:
                    skips.skip("duplicate_id", f"{spec}: episode id {episode.id!r} is already "
                               f"used by {specs[first]}, and {renamed!r} by "
                               f"{specs[owner[renamed]]}; give the episodes distinct ids "
                               "(e.g. the 'id' of episode.json)")
                    continue
                skips.warn(f"renamed ids of {spec}", f"{spec}: episode id {episode.id!r} is "
                           f"already used by {specs[first]}; this episode is {renamed!r}")
                episode = replace(episode, id=renamed)
            owner[episode.id] = s
            yield episode
