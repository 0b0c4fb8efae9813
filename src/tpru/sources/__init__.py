"""Sources of episodes, named ``KIND:PATH`` on the command line.

The table maps a kind to ``"module:factory"``, loaded through `tpru.registry`:
the module is imported only when that kind is used, so a missing optional
dependency matters only to the user who picks it. A factory is called as
``factory(path, skips=..., **options)``; options it does not take are refused
before the call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tpru.diagnostics import InputError, Skips
from tpru.registry import check_options, load

if TYPE_CHECKING:
    from tpru.sources.base import Source

SOURCES: dict[str, str] = {
    "frames": "tpru.sources.frames:FrameFolderSource",
    "manifest": "tpru.sources.manifest:ManifestSource",
    "video": "tpru.sources.video:VideoSource",
    "sim": "tpru.sources.sim:SimSource",
    "sharerobot": "tpru.sources.sharerobot:ShareRobotSource",
    "gui-odyssey": "tpru.sources.gui_odyssey:GUIOdysseySource",
    "habitat": "tpru.sources.habitat:HabitatSource",
    "lego-video": "tpru.sources.lego_video:LegoVideoSource",
    "lerobot": "tpru.sources.lerobot:LeRobotSource",
    "rlds": "tpru.sources.rlds:RLDSSource",
    "segments": "tpru.sources.segments:SegmentsSource",
    "coin": "tpru.sources.coin:COINSource",
    "epic-kitchens": "tpru.sources.epic_kitchens:EpicKitchensSource",
}

EXTRAS: dict[str, str] = {"video": "data", "lego-video": "data", "sim": "sim",
                          "segments": "data", "coin": "data", "epic-kitchens": "data",
                          "rlds": "rlds"}
"""Which extra of tpru a source kind needs, for the install hint."""


def open_source(spec: str, *, skips: Skips | None = None,
                options: Mapping[str, Mapping[str, Any]] | None = None) -> Source:
    """Open a source named ``KIND:PATH`` (e.g. ``frames:data/episodes``).

    Args:
        options: keyword options per kind, e.g. ``{"video": {"mode": "keyframes"}}``
            (the build passes its ``video`` config section).
    """
    kind, sep, path = spec.partition(":")
    if not sep or not path:
        raise InputError(f"source {spec!r} is not of the form KIND:PATH "
                         f"(kinds: {', '.join(sorted(SOURCES))})")
    if kind not in SOURCES:
        raise InputError(f"unknown source kind {kind!r} in {spec!r} "
                         f"(kinds: {', '.join(sorted(SOURCES))})")
    what = f"source kind {kind!r}"
    factory = load(SOURCES[kind], what=what, extra=EXTRAS.get(kind))
    kind_options = dict((options or {}).get(kind, {}))
    check_options(factory, kind_options, what=what, leading=1, fixed=["skips"])
    try:
        source: Source = factory(path, skips=skips or Skips(), **kind_options)
    except ValueError as err:
        raise InputError(f"source {spec!r}: {err}") from None
    return source


def source_labels(specs: Sequence[str]) -> list[str]:
    """A short, distinct name per source, for telling apart episodes with one id.

    The name is the last part of the path (a file's without its suffix; the
    simulator's for ``sim:``); sources that would share a name get their
    position in `specs` (1-based) after it.

    Example:
        >>> source_labels(["frames:data/robot", "manifest:nav.jsonl", "sim:gui:form"])
        ['robot', 'nav', 'gui']
        >>> source_labels(["frames:a/episodes", "frames:b/episodes"])
        ['episodes-1', 'episodes-2']
    """
    names = []
    for spec in specs:
        kind, _, path = spec.partition(":")
        if kind == "sim":
            names.append(path.partition(":")[0] or kind)
            continue
        where = Path(os.path.abspath(Path(path).expanduser()))
        names.append((where.stem if where.suffix and not where.is_dir() else where.name)
                     or kind)
    return [f"{name}-{i + 1}" if names.count(name) > 1 else name
            for i, name in enumerate(names)]
