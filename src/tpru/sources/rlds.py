"""Episodes from TFDS/RLDS datasets (Open X-Embodiment): ``rlds:PATH``.

PATH is a prepared TFDS dataset folder (``<name>/<version>/`` with
``dataset_info.json``, ``features.json`` and ``<name>-<split>.tfrecord-*``
shards; see `tpru.sources.rlds_layout`) or a folder searched for them (one
dataset each, the newest version of each). One episode per RLDS episode (one
``tf.train.Example``) and camera.

- Camera: ``camera`` names an image feature under ``steps/observation/``
  (default ``image``, else the first RGB image feature; ``all``: one episode
  per camera).
- Language: detected from ``features.json``: step-level
  ``steps/language_instruction``, RT-1's ``steps/observation/natural_language_instruction``,
  episode-level ``episode_metadata/...``, else a text feature named like an
  instruction; ``language`` overrides it. The first instruction is the
  episode's description (`process_phrase`); when it changes within the
  episode, each frame's instruction is its step.
- Frames: ``mode="steps"`` takes every ``stride``-th step; ``mode="keyframes"``
  decodes a candidate every ``stride`` steps and keeps those where the picture
  changed (`tpru.sources.keyframes.KeyframePicker`); at most ``max_frames``,
  spread evenly. Each kept frame is a reference into the shard
  (``SHARD#record=R&byte=B&feature=steps/observation/image&step=K``,
  `tpru.sources.stored_images`): the build's worker reads the record again
  and takes the images from it, so nothing is copied out of the dataset.

PATH may be a URL (``gs://...`` with gcsfs installed, ``s3://...`` with s3fs: any
fsspec protocol, `tpru.sources.remote`); frame references then carry the full URL.

Listing reads only each record's 12-byte header and seeks past its data; the
record is read (one in memory at a time, its CRC-32C checksums checked:
`tpru.sources.tfrecord`) and parsed when its episodes are made, on a build's
worker (a split source: `tpru.sources.base.SplitSource`). Bad input is counted
under ``drops.inputs`` naming the shard and episode: ``missing_file``,
``unreadable_file``, ``truncated_record``, ``damaged_record``,
``unreadable_image``, ``empty_episode``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from PIL import Image

from tpru.diagnostics import InputError, Skips, first_line
from tpru.schema import Episode
from tpru.sources.base import flatten, unique_ids
from tpru.sources.keyframes import KeyframePicker, grey_thumb, spread
from tpru.sources.remote import RemotePath, is_url
from tpru.sources.rlds_features import (
    OBSERVATION,
    Plan,
    episode_metadata,
    kept_step_texts,
    read_plan,
    step_texts,
)
from tpru.sources.rlds_layout import Location, Shard, find_datasets, read_dataset
from tpru.sources.stored_images import record_ref
from tpru.sources.text import process_phrase
from tpru.sources.tfrecord import (
    Record,
    feature_values,
    iter_spans,
    parse_example,
    read_record,
    remember_example,
)

MODES = ("steps", "keyframes")
class _RecordKey(NamedTuple):
    """One record of a shard: ``plan`` and ``shard`` index `RLDSSource.plans` and the
    split's shards, ``offset`` is the record's first byte and ``episode`` its index in
    the split."""

    plan: int
    split: str
    shard: int
    record: int
    offset: int
    episode: int


class _Report(NamedTuple):
    """A problem the listing found, counted by `RLDSSource.open_episode` in its place."""

    reason: str
    message: str


class RLDSSource:
    """Episodes from TFDS/RLDS datasets (see the module docstring).

    Args:
        path: a TFDS dataset folder, or a folder holding several.
        skips: where bad shards, records and images are counted.
        camera: an image feature under ``steps/observation/`` (``image``, ``wrist_image``),
            ``all``, or None for ``image`` (else the first RGB image feature).
        language: the feature holding the instruction (``language_instruction``,
            ``observation/natural_language_instruction``, ``episode_metadata/task``;
            keys are tried as given, then under ``steps/``), or None to detect it.
        split: a split name or a list of them; None reads every split.
        mode: ``steps`` (every ``stride``-th step) or ``keyframes`` (change-based).
        stride: steps between frames (``steps``) or between candidates (``keyframes``).
        change_threshold: for ``keyframes``, the mean grey difference (0-1) that counts
            as a change.
        max_frames: at most this many frames per episode, spread evenly.
        episodes: only these episode indices (positions within each split).
        tasks: only episodes whose instruction contains one of these (case-insensitive).

    Raises:
        InputError: no dataset there, a missing or malformed ``dataset_info.json`` or
            ``features.json``, no image feature, an unknown camera, language key or split,
            a URL whose protocol's package (``gcsfs`` for ``gs://``) is not installed.
        ValueError: an option is out of range.
    """

    def __init__(self, path: str | os.PathLike[str], *, skips: Skips, camera: str | None = None,
                 language: str | None = None, split: str | Sequence[str] | None = None,
                 mode: Literal["steps", "keyframes"] = "steps", stride: int = 1,
                 change_threshold: float = 0.03, max_frames: int = 64,
                 episodes: Sequence[int] | None = None,
                 tasks: Sequence[str] | str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a whole number of steps, at least 1, got {stride!r}")
        if not isinstance(max_frames, int) or max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames!r}")
        if not 0 <= change_threshold <= 1:
            raise ValueError(f"change_threshold must be between 0 and 1, got {change_threshold}")
        if episodes is not None and not all(isinstance(e, int) for e in episodes):
            raise ValueError(f"episodes must be a list of episode indices, got {episodes!r}")
        root = _root(path)
        self.skips = skips
        self.mode, self.stride, self.max_frames = mode, stride, max_frames
        self.change_threshold = change_threshold
        self.episodes = None if episodes is None else set(episodes)
        self.tasks = [t.lower() for t in ([tasks] if isinstance(tasks, str) else tasks or [])]
        self.listed_bytes = 0
        """Bytes of the shards read while listing (`episode_keys`): their record headers."""
        self.parsed_records = 0
        """Records parsed (`open_episode`, on a build's worker): each once."""
        datasets = [read_dataset(folder) for folder in find_datasets(root, skips)]
        wanted = None if split is None else [split] if isinstance(split, str) else list(split)
        if wanted is not None:
            known = {name for d in datasets for name in d.splits}
            unknown = [s for s in wanted if s not in known]
            if unknown:
                raise InputError(f"{root}: no split {', '.join(map(repr, unknown))} (splits: "
                                 f"{', '.join(sorted(known))})")
        self.plans = [read_plan(d, camera, language, wanted) for d in datasets]

    def iter_episodes(self) -> Iterator[Episode]:
        """Dataset by dataset, split by split in ``dataset_info.json`` order, shard by shard."""
        return self.admit(flatten(self.open_episode(key) for key in self.episode_keys()))

    # A split source (`tpru.sources.base.SplitSource`): listing reads each record's 12-byte
    # header and seeks past its data; a build's worker reads the record (checksum checked),
    # parses it and checks its images.
    def episode_keys(self) -> Iterator[_RecordKey | _Report]:
        """A key per record of the shards that hold a wanted episode, in order, and one per
        problem the listing finds (a missing shard, a header that cannot be framed)."""
        for number, plan in enumerate(self.plans):
            for split in plan.splits:
                first = 0
                for position, shard in enumerate(plan.dataset.splits[split]):
                    first = shard.first if shard.first is not None else first
                    if self._shard_unwanted(shard, first):
                        first += shard.length or 0
                        continue
                    read = 0
                    for key in self._shard_keys(plan, split, shard, first):
                        if isinstance(key, _RecordKey):
                            read = key.record + 1
                            key = key._replace(plan=number, shard=position)
                        yield key
                    first += max(read, shard.length or 0)

    def open_episode(self, key: _RecordKey | _Report) -> list[Episode] | None:
        """The episodes (one per camera) of the record of `key`; None for a record whose
        episode is not wanted or cannot be read (counted), or a problem key (counted)."""
        if isinstance(key, _Report):
            self.skips.skip(key.reason, key.message)
            return None
        plan = self.plans[key.plan]
        shard = plan.dataset.splits[key.split][key.shard]
        where = f"{shard.path}: record {key.record} (episode {key.episode})"
        try:
            record = read_record(shard.path, key.offset, key.record)
        except OSError as err:
            self.skips.skip("unreadable_file", f"{shard.path}: cannot read ({first_line(err)})")
            return None
        if record.data is None:  # its data fails its checksum; reading goes on
            self.skips.skip("truncated_record" if record.reason == "truncated"
                            else "damaged_record",
                            f"{where} at byte {record.offset}: {record.problem}")
            return None
        if not self._wanted_index(key.episode):
            return None
        return list(self._episodes(plan, key.split, key.episode, shard, record, where))

    def admit(self, opened: Iterator[Episode | None]) -> Iterator[Episode]:
        """The episodes made, in key order; a repeated id is counted and skipped."""
        return unique_ids(((_where(e), e) for e in opened if e is not None), self.skips)

    def _shard_unwanted(self, shard: Shard, first: int) -> bool:
        if self.episodes is None or shard.length is None:
            return False
        return not any(first <= e < first + shard.length for e in self.episodes)

    def _wanted_index(self, index: int) -> bool:
        return self.episodes is None or index in self.episodes

    def _shard_keys(self, plan: Plan, split: str, shard: Shard,
                    first: int) -> Iterator[_RecordKey | _Report]:
        """The keys of one shard's records (plan and shard left 0), and its problems.

        A record of an episode not wanted still has a key: a worker checks its checksum,
        so a damaged one is counted whatever ``episodes`` selects in its shard.
        """
        where = f"{shard.path}"
        if not shard.path.is_file():
            lost = f" ({shard.length} episodes)" if shard.length is not None else ""
            yield _Report("missing_file", f"{where}: no such shard of split {split!r} of "
                          f"{plan.dataset.root}{lost}")
            return
        count = 0
        try:
            for span in iter_spans(shard.path):
                self.listed_bytes += span.read
                count = span.index + 1
                if span.problem:
                    name = f"{where}: record {span.index} (episode {first + span.index})"
                    left = shard.length - span.index - 1 if shard.length is not None else 0
                    more = f"; the {left} records after it are lost too" if left > 0 else ""
                    yield _Report("truncated_record" if span.reason == "truncated"
                                  else "damaged_record",
                                  f"{name} at byte {span.offset}: {span.problem}{more}")
                    return
                yield _RecordKey(0, split, 0, span.index, span.offset, first + span.index)
        except OSError as err:
            yield _Report("unreadable_file", f"{where}: cannot read ({first_line(err)})")
            return
        if shard.length is not None and count < shard.length:
            yield _Report("truncated_record", f"{where}: {count} records, dataset_info.json "
                          f"gives {shard.length} (episodes {first + count} to "
                          f"{first + shard.length - 1} are lost)")

    def _episodes(self, plan: Plan, split: str, index: int, shard: Shard, record: Record,
                  where: str) -> Iterator[Episode]:
        assert record.data is not None
        self.parsed_records += 1
        try:
            features = parse_example(record.data)
        except ValueError as err:
            self.skips.skip("damaged_record", f"{where}: {err}")
            return
        remember_example(shard.path, record.offset, features)
        texts = step_texts(features, plan.language)
        if self.tasks and not any(want in text.lower() for want in self.tasks for text in texts):
            return
        for camera in plan.cameras:
            images = feature_values(features[camera]) if camera in features else []
            if not images:
                self.skips.skip("empty_episode", f"{where}: no {camera} images")
                continue
            steps = self._pick(images, where, camera)
            if not steps:
                self.skips.skip("empty_episode", f"{where}: no {camera} image decodes")
                continue
            frames = [record_ref(shard.path, record.index, record.offset, camera, k)
                      for k in steps]
            yield self._episode(plan, split, index, shard, record, camera, steps, frames,
                                    texts, features)

    def _pick(self, images: list[bytes], where: str, camera: str) -> list[int]:
        """The step indices to keep, each one's image checked (`_readable`); in keyframes
        mode each candidate's image is decoded to compare it with the last one kept."""
        if self.mode == "keyframes":
            picker = KeyframePicker(fps=1 / self.stride, change_threshold=self.change_threshold)
            for k in range(len(images)):
                if picker.is_candidate(k) and \
                        (image := self._decode(images[k], where, camera, k)) is not None:
                    picker.offer(k, grey_thumb(image))
            return [int(k) for k in spread([float(round(t)) for t in picker.times],
                                           self.max_frames)]
        # Thinned before decoding: a long episode's steps left out are never decoded.
        chosen = spread([float(k) for k in range(0, len(images), self.stride)], self.max_frames)
        return [int(k) for k in chosen if self._readable(images[int(k)], where, camera, int(k))]

    def _readable(self, data: bytes, where: str, camera: str, step: int) -> bool:
        """Whether a step's image can be read, counting one that cannot.

        A JPEG or PNG that is whole (`_whole`) passes without decoding its pixels: the
        builder decodes every kept image anyway, and one damaged inside is dropped there
        and counted (``unreadable_image``) under its reference (shard, record, step).
        Anything else (a cut image, another format) is decoded here, and skipped with its
        shard, episode and step named if that fails.
        """
        return _whole(data) or self._decode(data, where, camera, step) is not None

    def _decode(self, data: bytes, where: str, camera: str, step: int) -> Image.Image | None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.convert("RGB")
        except Exception as err:  # PIL raises many kinds for a damaged image
            self.skips.skip("unreadable_image", f"{where}: {camera} of step {step} cannot be "
                            f"decoded ({first_line(err)})")
            return None

    def _episode(self, plan: Plan, split: str, index: int, shard: Shard, record: Record,
                 camera: str, steps: list[int], frames: list[str], texts: list[str],
                 features: Mapping[str, Any]) -> Episode:
        name = camera.removeprefix(OBSERVATION)
        instruction = next((t for t in texts if t), "")
        distinct = list(dict.fromkeys(t for t in texts if t))
        meta: dict[str, Any] = {
            "dataset": plan.label, "version": plan.dataset.version, "split": split,
            "episode_index": index, "shard": shard.path.name, "record": record.index,
            "camera": name, "step_indices": steps,
            "num_steps": len(feature_values(features[camera])),
        }
        if plan.language is not None:
            meta["language_key"] = plan.language.key
        if instruction:
            meta["instruction"] = instruction
        if len(distinct) > 1:
            meta["instructions"] = distinct
        metadata = episode_metadata(features, plan.dataset.features)
        if metadata:
            meta["episode_metadata"] = metadata
        episode_id = f"{plan.label}/{split}/{index:06d}"
        return Episode(
            id=f"{episode_id}/{name}" if len(plan.cameras) > 1 else episode_id,
            scenario="robot",
            source="rlds",
            frames=tuple(frames),
            steps=kept_step_texts(texts, steps) if len(distinct) > 1 else None,
            description=(process_phrase(instruction) or None) if instruction else None,
            meta=meta,
        )


def _where(episode: Episode) -> str:
    """The record an episode was made from, named as its messages name it."""
    shard = episode.frames[0].rpartition("#")[0]
    return f"{shard}: record {episode.meta['record']} (episode {episode.meta['episode_index']})"


_JPEG = (b"\xff\xd8\xff", b"\xff\xd9")
_PNG = (b"\x89PNG\r\n\x1a\n", b"\x00\x00\x00\x00IEND\xaeB`\x82")


def _whole(data: bytes) -> bool:
    r"""Whether `data` starts as a JPEG or PNG does and ends with that format's end marker
    (a JPEG's EOI, a PNG's IEND chunk): an image cut short fails, without decoding it.

    Example:
        >>> _whole(b"\xff\xd8\xff\xe0" + bytes(100) + b"\xff\xd9"), _whole(b"\xff\xd8\xff\xe0")
        (True, False)
    """
    return any(data.startswith(head) and data.endswith(tail) and len(data) > len(head + tail)
               for head, tail in (_JPEG, _PNG))


def _root(path: str | os.PathLike[str]) -> Location:
    """The folder `path` names: local, or a URL read through fsspec (``gs://`` with gcsfs
    installed, ``s3://`` with s3fs, ...)."""
    text = os.fspath(path)
    if is_url(text):
        remote = RemotePath(text)
        try:
            found = remote.is_dir()
        except OSError as err:
            raise InputError(f"{text}: cannot read ({first_line(err)})") from None
        if not found:
            raise InputError(f"{text}: no such folder")
        return remote
    root = Path(os.path.abspath(Path(text).expanduser()))
    if not root.is_dir():
        raise InputError(f"{text}: no such folder")
    return root
