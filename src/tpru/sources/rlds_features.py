"""What an RLDS source reads from a dataset's features.json: the camera keys, the language
feature, and the texts and metadata of a parsed episode (`tpru.sources.rlds`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tpru.diagnostics import InputError
from tpru.sources.rlds_layout import Dataset, Feature
from tpru.sources.tfrecord import feature_values

OBSERVATION = "steps/observation/"

LANGUAGE_KEYS = (
    "steps/language_instruction",
    "steps/observation/natural_language_instruction",
    "steps/observation/language_instruction",
    "episode_metadata/language_instruction",
    "episode_metadata/natural_language_instruction",
)
"""Where Open X-Embodiment datasets keep the instruction, tried in this order."""

_LANGUAGE_NAME = re.compile(r"instruction|language|task|goal", re.I)


@dataclass(frozen=True)
class Plan:
    """What to read from one dataset: its splits, camera keys and language feature."""

    dataset: Dataset
    label: str
    splits: tuple[str, ...]
    cameras: tuple[str, ...]
    language: Feature | None


def read_plan(dataset: Dataset, camera: str | None, language: str | None,
              splits: list[str] | None) -> Plan:
    """What to read from `dataset`: the chosen splits (None: all), cameras and language."""
    label = f"{dataset.name}/{dataset.config}" if dataset.config else dataset.name
    chosen = tuple(s for s in dataset.splits if splits is None or s in splits)
    return Plan(dataset, label, chosen, cameras(dataset, camera),
                 language_feature(dataset, language))


def cameras(dataset: Dataset, camera: str | None) -> tuple[str, ...]:
    """The image feature keys to read: `camera`'s, every one (``all``), or by default
    ``image`` or the first RGB one."""
    images = {key.removeprefix(OBSERVATION): f for key, f in dataset.features.items()
              if f.kind == "image" and f.per_step and key.startswith(OBSERVATION)}
    if not images:
        shown = ", ".join(list(dataset.features)[:12]) or "none"
        raise InputError(f"{dataset.features_path}: no image feature under steps/observation/ "
                         f"(features: {shown})")
    if camera == "all":
        return tuple(OBSERVATION + name for name in images)
    if camera is None:
        rgb = [n for n, f in images.items() if f.dtype in ("uint8", "") and
               (not f.shape or f.shape[-1] == 3)]
        return (OBSERVATION + ("image" if "image" in images else (rgb or list(images))[0]),)
    name = camera.removeprefix("steps/").removeprefix("observation/")
    if name not in images:
        raise InputError(f"{dataset.features_path}: no camera {camera!r} (cameras: "
                         f"{', '.join(images)}, or all)")
    return (OBSERVATION + name,)


def language_feature(dataset: Dataset, language: str | None) -> Feature | None:
    """The instruction's text feature: `language`'s, else the first of `LANGUAGE_KEYS`,
    else a text feature named like an instruction; None where there is none."""
    texts = {key: f for key, f in dataset.features.items() if f.kind == "text"}
    if language is not None:
        for key in (language, f"steps/{language}"):
            if key in texts:
                return texts[key]
        raise InputError(f"{dataset.features_path}: no text feature {language!r} (text "
                         f"features: {', '.join(texts) or 'none'})")
    for key in LANGUAGE_KEYS:
        if key in texts:
            return texts[key]
    return next((f for key, f in texts.items() if _LANGUAGE_NAME.search(key.rsplit("/", 1)[-1])
                 and "embedding" not in key), None)


def step_texts(features: Mapping[str, Any], language: Feature | None) -> list[str]:
    """The instruction per step (one for an episode-level feature), decoded."""
    if language is None or language.key not in features:
        return []
    return [text_value(v) for v in feature_values(features[language.key])]


def text_value(value: Any) -> str:
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.replace("\x00", " ").split())


def kept_step_texts(texts: list[str], steps: list[int]) -> tuple[str, ...]:
    """Each kept step's instruction; the last one before it where a step has none."""
    out, last = [], ""
    for k in range(max(steps) + 1):
        last = (texts[k] if k < len(texts) else "") or last
        if k in steps:
            out.append(last)
    return tuple(out)


def episode_metadata(features: Mapping[str, Any],
                      specs: Mapping[str, Feature]) -> dict[str, Any]:
    """The episode's single-valued metadata (texts and scalars), for ``meta``."""
    found: dict[str, Any] = {}
    for key, spec in specs.items():
        if spec.per_step or spec.shape or spec.kind not in ("text", "tensor") \
                or key not in features:
            continue
        values = feature_values(features[key])
        if len(values) == 1:
            found[key.removeprefix("episode_metadata/")] = text_value(values[0]) \
                if isinstance(values[0], bytes) else values[0]
    return found
