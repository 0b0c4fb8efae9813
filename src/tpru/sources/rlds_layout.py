"""What a TFDS dataset folder says about itself: splits, shards and features.

TFDS writes a prepared dataset as ``<name>/<version>/`` (``<name>/<config>/<version>/``
for a dataset with configs) holding:

- ``dataset_info.json``: ``name``, ``version``, ``fileFormat`` (``tfrecord``),
  ``configName``, and ``splits``: ``[{name, shardLengths: ["12", ...],
  filepathTemplate: "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}]``;
- ``features.json``: the ``FeaturesDict`` serialized, each feature an object
  with its ``pythonClassName`` and one content key: ``featuresDict``
  (``{"features": {...}}``), ``sequence`` (a ``Dataset`` or ``Sequence``:
  ``{"feature": ..., "length": "-1"}``), ``image`` (``shape``, ``dtype``,
  ``encodingFormat``), ``text``, ``tensor`` (``shape``, ``dtype``);
- shards ``<name>-<split>.tfrecord-00000-of-00004``: one ``tf.train.Example``
  per example, nested features flattened into ``/``-joined keys
  (``steps/observation/image`` holds every step's encoded image in order).

RLDS datasets (Open X-Embodiment) are one example per episode with a
``steps`` Dataset (``observation/...``, ``action``, ``is_first``, ``is_last``,
``language_instruction``, ...) and optional ``episode_metadata``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tpru.diagnostics import InputError, Skips, first_line, json_problem
from tpru.sources.remote import RemotePath

Location = Path | RemotePath
"""A local folder or file, or one at a URL (``gs://...``, read through fsspec)."""

DEFAULT_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class Feature:
    """One leaf of ``features.json``: ``kind`` is image, text, tensor or other;
    ``per_step`` says it lies inside the ``steps`` sequence (one value per step)."""

    key: str
    kind: str
    per_step: bool
    dtype: str = ""
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Shard:
    """One shard file of a split; ``first`` is the split index of its first example
    and ``length`` the number of examples ``dataset_info.json`` gives it (None: unknown)."""

    path: Location
    first: int | None
    length: int | None


@dataclass(frozen=True)
class Dataset:
    """A TFDS dataset folder read and checked."""

    root: Location
    name: str
    version: str
    config: str
    splits: Mapping[str, tuple[Shard, ...]]
    features: Mapping[str, Feature]

    @property
    def features_path(self) -> Location:
        return self.root / "features.json"


def find_datasets(path: Location, skips: Skips) -> list[Location]:
    """`path` if it holds ``dataset_info.json``, else the dataset folders below it, in
    path order; of several versions of one dataset (``bridge/0.1.0``, ``bridge/1.0.0``)
    only the newest, with a warning naming the others.

    Raises:
        InputError: no dataset there, saying what was found instead.
    """
    if (path / "dataset_info.json").is_file():
        return [path]
    found = sorted(p.parent for p in path.rglob("dataset_info.json")
                   if not any(part.startswith((".", "incomplete.")) for part in
                              _relative(p, path).parts[:-1]))
    newest: dict[Location, Location] = {}
    for folder in found:
        key = folder.parent if _VERSION.match(folder.name) else folder
        if key in newest and _version(newest[key].name) >= _version(folder.name):
            skips.warn("older_version", f"{folder}: an older version of {newest[key]}; "
                       "not read")
            continue
        if key in newest:
            skips.warn("older_version", f"{newest[key]}: an older version of {folder}; not read")
        newest[key] = folder
    if newest:
        return sorted(newest.values())
    shards = [p for p in path.rglob("*.tfrecord*") if p.is_file()][:1]
    has = f"; it has {_relative(shards[0], path)} but no dataset_info.json beside it" \
        if shards else ""
    raise InputError(f"{path}: no TFDS dataset (a folder <name>/<version>/ with "
                     f"dataset_info.json, features.json and tfrecord shards){has}")


def _relative(path: Location, root: Location) -> PurePosixPath:
    if isinstance(path, RemotePath) and isinstance(root, RemotePath):
        return path.relative_to(root)
    assert isinstance(path, Path) and isinstance(root, Path)
    return PurePosixPath(path.relative_to(root))


def _parts(path: Location) -> tuple[str, ...]:
    """What `Path` sorts by (`sorted` on a mix of local and remote paths)."""
    return path.parts


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".")) if _VERSION.match(name) else (-1,)


def read_dataset(root: Location) -> Dataset:
    """Read ``dataset_info.json`` and ``features.json`` of one dataset folder.

    Raises:
        InputError: either file missing, unreadable, or not of TFDS's shape; a file
            format other than tfrecord. The message names the file.
    """
    info_path = root / "dataset_info.json"
    info = _read_json(info_path, what="dataset_info.json")
    features_json = _read_json(root / "features.json", what="features.json")
    name = info.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{info_path}: no dataset 'name'")
    file_format = str(info.get("fileFormat") or "tfrecord").lower()
    if file_format != "tfrecord":
        raise InputError(f"{info_path}: fileFormat {file_format!r} is not read (rlds: reads "
                         "tfrecord shards); prepare the dataset with file_format='tfrecord'")
    splits_json = info.get("splits")
    if not isinstance(splits_json, list) or not splits_json:
        raise InputError(f"{info_path}: no 'splits'")
    splits = {}
    for split in splits_json:
        if not isinstance(split, dict) or not isinstance(split.get("name"), str):
            raise InputError(f"{info_path}: a split without a 'name'")
        splits[split["name"]] = _shards(root, name, file_format, split, info_path)
    features = flat_features(features_json, root / "features.json")
    return Dataset(root=root, name=name, version=str(info.get("version", "")),
                   config=str(info.get("configName") or ""), splits=splits, features=features)


def _read_json(path: Location, *, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path.parent}: not a TFDS dataset folder (no {what})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read ({first_line(err)})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not JSON ({json_problem(err)})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def _shards(root: Location, name: str, file_format: str, split: Mapping[str, Any],
            info_path: Location) -> tuple[Shard, ...]:
    """The shard files of one split, from ``shardLengths`` and ``filepathTemplate``."""
    template = str(split.get("filepathTemplate") or DEFAULT_TEMPLATE)
    fill = {"{DATASET}": name, "{SPLIT}": split["name"], "{FILEFORMAT}": file_format}
    lengths = split.get("shardLengths")
    if not isinstance(lengths, list) or not lengths:
        # Older or hand-made infos: no lengths; take the files the template matches.
        pattern = template
        for var, value in fill.items():
            pattern = pattern.replace(var, value)
        for var in ("{SHARD_X_OF_Y}", "{SHARD_INDEX}", "{NUM_SHARDS}"):
            pattern = pattern.replace(var, "*")
        return tuple(Shard(p, None, None) for p in sorted(root.glob(pattern), key=_parts))
    try:
        counts = [int(n) for n in lengths]
    except (TypeError, ValueError):
        raise InputError(f"{info_path}: split {split['name']!r}: shardLengths "
                         f"{lengths!r} are not numbers") from None
    digits = max(len(str(len(counts))), 5)
    shards, first = [], 0
    for index, count in enumerate(counts):
        names = {**fill, "{SHARD_INDEX}": f"{index:0{digits}d}",
                 "{NUM_SHARDS}": f"{len(counts):0{digits}d}",
                 "{SHARD_X_OF_Y}": f"{index:0{digits}d}-of-{len(counts):0{digits}d}"}
        relative = template
        for var, value in names.items():
            relative = relative.replace(var, value)
        shards.append(Shard(root / relative, first, count))
        first += count
    return tuple(shards)


def flat_features(features_json: Mapping[str, Any], path: Location) -> dict[str, Feature]:
    """The leaves of a serialized ``FeaturesDict`` by their flattened key, in file order.

    Raises:
        InputError: the top is not a ``FeaturesDict``.
    """
    top = features_json.get("featuresDict")
    if not isinstance(top, dict) or not isinstance(top.get("features"), dict):
        raise InputError(f"{path}: not a TFDS FeaturesDict (no featuresDict.features)")
    return dict(_leaves(top["features"], "", per_step=False))


def _leaves(features: Mapping[str, Any], prefix: str, *,
            per_step: bool) -> Iterator[tuple[str, Feature]]:
    for name, spec in features.items():
        key = f"{prefix}{name}"
        if not isinstance(spec, dict):
            continue
        if isinstance(spec.get("featuresDict"), dict):
            yield from _leaves(spec["featuresDict"].get("features") or {}, f"{key}/",
                               per_step=per_step)
        elif isinstance(spec.get("sequence"), dict):
            inner = spec["sequence"].get("feature")
            if per_step or not isinstance(inner, dict):  # sequences of sequences: not read
                yield key, Feature(key, "other", per_step)
            elif isinstance(inner.get("featuresDict"), dict):
                yield from _leaves(inner["featuresDict"].get("features") or {}, f"{key}/",
                                   per_step=True)
            else:
                yield from _leaves({name: inner}, prefix, per_step=True)
        elif isinstance(spec.get("image"), dict):
            yield key, Feature(key, "image", per_step, str(spec["image"].get("dtype", "")),
                               _shape(spec["image"]))
        elif "text" in spec:
            yield key, Feature(key, "text", per_step, "string")
        elif isinstance(spec.get("tensor"), dict):
            tensor = spec["tensor"]
            shape = _shape(tensor)
            kind = "text" if tensor.get("dtype") == "string" and not shape else "tensor"
            yield key, Feature(key, kind, per_step, str(tensor.get("dtype", "")), shape)
        else:
            yield key, Feature(key, "other", per_step)


def _shape(spec: Mapping[str, Any]) -> tuple[int, ...]:
    dims = (spec.get("shape") or {}).get("dimensions") or []
    try:
        return tuple(int(d) for d in dims)
    except (TypeError, ValueError):
        return ()
