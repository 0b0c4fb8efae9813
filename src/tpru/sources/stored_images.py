"""Frames stored inside a dataset's own files, referenced rather than copied out.

Some datasets keep their images inside bigger files: an RLDS/TFDS episode's
encoded images lie in one ``tf.train.Example`` record of a TFRecord shard, and
LeRobot image features in the ``{bytes, path}`` cells of the data parquet. A
source lists such a frame as a reference into that file, and the build's
worker reads the bytes from there (`tpru.sources.base.load_frames`), so no
copy is written anywhere and an episode's frames are read together: one
record, or the parquet rows of one episode. A worker holds one episode's
images at a time, and the reference is a plain string: it pickles to a Ray
node and reads the same there.

- ``SHARD#record=3&byte=1234&feature=steps/observation/image&step=17``: the
  image of step 17 in record 3 of a TFRecord shard (the record starts at byte
  1234), under the ``tf.train.Example`` key ``feature``;
- ``FILE.parquet#episode_index=3&frame_index=12&column=observation.images.top``:
  the image bytes of a parquet cell, in the row of that episode and frame.

Values are percent-encoded where they must be (`urllib.parse.quote`), so a
reference reads as it is written above. A frame that cannot be read comes back
as a `LoadedFrame` with an ``error`` (``missing_file``, ``unreadable_file``)
and a message naming the file, the record or episode and the step or frame;
an image that is read but does not decode is the builder's to count, under
its reference.

Example:
    >>> record_ref("/d/x-train.tfrecord-00000-of-00001", 3, 1234, "steps/observation/image", 17)
    '/d/x-train.tfrecord-00000-of-00001#record=3&byte=1234&feature=steps/observation/image&step=17'
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote

from tpru.diagnostics import first_line
from tpru.sources.base import LoadedFrame
from tpru.sources.remote import RemotePath

_RECORD_FIELDS = ("record", "byte", "feature", "step")
_ROW_FIELDS = ("episode_index", "frame_index", "column")
_BATCH = 64
"""Parquet rows decoded at a time while looking for an episode's frames."""


def record_ref(shard: str | os.PathLike[str] | RemotePath, record: int, offset: int,
               feature: str, step: int) -> str:
    """The reference to the image of `step` under `feature` in a TFRecord shard's record
    (a shard at a URL keeps its full URL, so a worker on another machine opens it)."""
    where = str(shard) if isinstance(shard, RemotePath) else os.fspath(shard)
    return (f"{where}#record={record}&byte={offset}&feature={quote(feature)}"
            f"&step={step}")


def parquet_ref(path: str | os.PathLike[str], episode: int, frame: int, column: str) -> str:
    """The reference to the image in `column` of a parquet file's row of `episode` and `frame`.

    Example:
        >>> parquet_ref("/d/file-000.parquet", 3, 12, "observation.images.top")
        '/d/file-000.parquet#episode_index=3&frame_index=12&column=observation.images.top'
    """
    return (f"{os.fspath(path)}#episode_index={episode}&frame_index={frame}"
            f"&column={quote(column)}")


class _Unreadable(Exception):
    """Frames that cannot be read: ``reason`` is the counted key, the message names the file."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _fields(ref: str, names: Sequence[str]) -> dict[str, str]:
    """The fragment's fields of `ref`, all of `names` present (ValueError if not)."""
    fields = dict(parse_qsl(ref.rpartition("#")[2], keep_blank_values=True))
    missing = [n for n in names if n not in fields]
    if missing:
        raise ValueError(f"{ref}: not a frame reference tpru reads (no {', '.join(missing)})")
    return fields


def _whole_number(fields: Mapping[str, str], name: str, ref: str) -> int:
    try:
        return int(fields[name])
    except ValueError:
        raise ValueError(f"{ref}: not a frame reference tpru reads ({name} "
                         f"{fields[name]!r} is not a whole number)") from None


def _file_problem(path: str, err: OSError) -> _Unreadable:
    if isinstance(err, FileNotFoundError):
        return _Unreadable("missing_file", f"{path}: no such file")
    return _Unreadable("unreadable_file", f"{path}: cannot read ({err.strerror or err})")


# ---------------------------------------------------------------- TFRecord shards


def record_frames(path: str, refs: Sequence[str]) -> Iterator[LoadedFrame]:
    """The images `refs` name in the TFRecord file `path`, in order.

    Each record is read once for the run of refs into it (an episode's frames
    are one run), its framing and checksums checked again, unless this process
    made the episode from it just before (`tpru.sources.tfrecord.recall_example`);
    only that record is held.
    """
    held: tuple[int, Mapping[str, Any] | _Unreadable] | None = None
    for ref in refs:
        try:
            fields = _fields(ref, _RECORD_FIELDS)
            record, offset, step = (_whole_number(fields, n, ref)
                                    for n in ("record", "byte", "step"))
        except ValueError as err:
            yield LoadedFrame(ref, error="unreadable_file", message=str(err))
            continue
        if held is None or held[0] != offset:
            held = (offset, _example(path, record, offset))
        example = held[1]
        if isinstance(example, _Unreadable):
            yield LoadedFrame(ref, error=example.reason, message=str(example))
            continue
        yield _step_image(example, fields["feature"], step, ref,
                          f"{path}: record {record} at byte {offset}")


def _example(path: str, record: int, offset: int) -> Mapping[str, Any] | _Unreadable:
    """The features of the record at `offset` (``tf.train.Example``'s feature map): those
    this process kept when it made the episode (`recall_example`), else read again."""
    from tpru.sources.tfrecord import parse_example, read_record, recall_example

    kept = recall_example(path, offset)
    if kept is not None:
        return kept
    try:
        found = read_record(path, offset, record)
    except OSError as err:
        return _file_problem(path, err)
    where = f"{path}: record {record} at byte {offset}"
    if found.data is None:
        return _Unreadable("unreadable_file", f"{where}: {found.problem}")
    try:
        return parse_example(found.data)
    except ValueError as err:
        return _Unreadable("unreadable_file", f"{where}: {err}")


def _step_image(features: Mapping[str, Any], key: str, step: int, ref: str,
                where: str) -> LoadedFrame:
    # The repeated field indexed in place: listing it would copy every step's image.
    feature = features.get(key)
    kind = feature.WhichOneof("kind") if feature is not None else None
    images = getattr(feature, kind).value if kind is not None else ()
    if not 0 <= step < len(images) or not isinstance(images[step], bytes):
        return LoadedFrame(ref, error="unreadable_file", message=f"{where}: no {key} image of "
                           f"step {step} (it has {len(images)} steps; was the shard changed?)")
    return LoadedFrame(ref, data=images[step])


# ---------------------------------------------------------------- parquet cells


def parquet_frames(path: str, refs: Sequence[str]) -> Iterator[LoadedFrame]:
    """The images `refs` name in the parquet file `path`, in order.

    Only the row groups whose ``episode_index`` statistics may hold the episodes
    asked for are read, a batch of rows at a time, and only the cells asked for
    are kept: one episode's images, not the file's.
    """
    wanted: dict[tuple[int, int, str], bytes | None] = {}
    keys: list[tuple[int, int, str] | str] = []  # per ref: its cell, or why it is malformed
    for ref in refs:
        try:
            fields = _fields(ref, _ROW_FIELDS)
            key = (_whole_number(fields, "episode_index", ref),
                   _whole_number(fields, "frame_index", ref), fields["column"])
        except ValueError as err:
            keys.append(str(err))
            continue
        keys.append(key)
        wanted[key] = None
    failed: _Unreadable | None = None
    if wanted:
        try:
            _read_cells(path, wanted)
        except OSError as err:
            failed = _file_problem(path, err)
        except Exception as err:  # pyarrow raises many kinds for a damaged file
            failed = _Unreadable("unreadable_file", f"{path}: cannot read ({first_line(err)})")
    for ref, cell in zip(refs, keys, strict=True):
        if isinstance(cell, str):
            yield LoadedFrame(ref, error="unreadable_file", message=cell)
        elif failed is not None:
            yield LoadedFrame(ref, error=failed.reason, message=str(failed))
        elif (data := wanted[cell]) is None:
            yield LoadedFrame(ref, error="unreadable_file", message=f"{path}: episode "
                              f"{cell[0]} frame {cell[1]}: no {cell[2]} image bytes")
        else:
            yield LoadedFrame(ref, data=data)


def _read_cells(path: str, wanted: dict[tuple[int, int, str], bytes | None]) -> None:
    """Fill `wanted` (``(episode, frame, column) -> None``) with each cell's image bytes."""
    import pyarrow.parquet as pq

    episodes = {e for e, _, _ in wanted}
    columns = sorted({c for _, _, c in wanted})
    left = set(wanted)
    with pq.ParquetFile(path) as data:
        groups = _row_groups(data, episodes)
        if not groups:
            return
        for batch in data.iter_batches(batch_size=_BATCH, row_groups=groups,
                                       columns=["episode_index", "frame_index", *columns]):
            rows = zip(batch.column("episode_index").to_pylist(),
                       batch.column("frame_index").to_pylist(), strict=True)
            for i, (episode, frame) in enumerate(rows):
                for column in columns:
                    key = (episode, frame, column)
                    if key in left:
                        left.discard(key)
                        wanted[key] = _cell_bytes(batch.column(column)[i].as_py())
            if not left:
                return


def _cell_bytes(cell: Any) -> bytes | None:
    """The image bytes of a parquet cell (``{bytes, path}``, or bare bytes), if any."""
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    return data if isinstance(data, bytes) and data else None


def _row_groups(data: Any, episodes: set[int]) -> list[int]:
    """The row groups whose ``episode_index`` range may hold one of `episodes` (all, where
    the file keeps no statistics)."""
    meta = data.metadata
    groups = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        stats = next((group.column(c).statistics for c in range(group.num_columns)
                      if group.column(c).path_in_schema == "episode_index"), None)
        if stats is None or not stats.has_min_max or \
                any(stats.min <= e <= stats.max for e in episodes):
            groups.append(g)
    return groups
