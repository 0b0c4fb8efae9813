"""TFRecord files of ``tf.train.Example`` records, read without TensorFlow.

A TFRecord file is a run of records, each framed as::

    uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes
    length bytes of data          | uint32 masked CRC-32C of the data

(masked: ``((crc >> 15 | crc << 17) + 0xa282ead8) mod 2**32``). TFDS writes one
serialized ``tf.train.Example`` per record; RLDS puts a whole episode in one.

Why not a reader package: the ``tfrecord`` package (PyPI) skips both
checksums, trusts the length field (a damaged one asks for that many bytes of
memory), collapses a one-element bytes list to a scalar, and its ``__init__``
imports torch whenever torch is installed. Here the framing is checked with
the ``crc32c`` package (the length's checksum before anything is allocated,
the data's before it is parsed), so a truncated or damaged shard is reported
by file, record and byte offset. Parsing is Google's ``protobuf`` with the
``Example`` message of TensorFlow's ``example.proto``/``feature.proto``,
declared below in a private descriptor pool (TensorFlow's, if loaded in the
same process, is left alone).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from tpru.sources.remote import RemotePath, is_url, open_remote

try:
    import crc32c
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
    from google.protobuf.message import DecodeError
except ImportError as err:  # named so the install hint says what is missing
    raise ModuleNotFoundError(f"{err} (the rlds extra: protobuf and crc32c)",
                              name="protobuf" if "crc32c" not in str(err) else "crc32c") from err

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8

# TensorFlow's tensorflow/core/example/{feature,example}.proto: field numbers are the format.
_EXAMPLE_PROTO = """
name: "tpru/tensorflow_example.proto"
package: "tensorflow"
syntax: "proto3"
message_type {
  name: "BytesList"
  field { name: "value" number: 1 label: LABEL_REPEATED type: TYPE_BYTES }
}
message_type {
  name: "FloatList"
  field { name: "value" number: 1 label: LABEL_REPEATED type: TYPE_FLOAT }
}
message_type {
  name: "Int64List"
  field { name: "value" number: 1 label: LABEL_REPEATED type: TYPE_INT64 }
}
message_type {
  name: "Feature"
  field { name: "bytes_list" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".tensorflow.BytesList" oneof_index: 0 }
  field { name: "float_list" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".tensorflow.FloatList" oneof_index: 0 }
  field { name: "int64_list" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".tensorflow.Int64List" oneof_index: 0 }
  oneof_decl { name: "kind" }
}
message_type {
  name: "Features"
  field { name: "feature" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".tensorflow.Features.FeatureEntry" }
  nested_type {
    name: "FeatureEntry"
    field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE
            type_name: ".tensorflow.Feature" }
    options { map_entry: true }
  }
}
message_type {
  name: "Example"
  field { name: "features" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".tensorflow.Features" }
}
"""


def _example_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(text_format.Parse(_EXAMPLE_PROTO, descriptor_pb2.FileDescriptorProto()))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


Example = _example_class()
"""``tf.train.Example``: ``Example.FromString(data).features.feature[key]``."""


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC-32C of `data`.

    Example:
        >>> hex(masked_crc(b""))
        '0xa282ead8'
    """
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class Record:
    """One record of a TFRecord file: its data, or why there is none.

    ``problem`` is set when the record could not be read; ``data`` is then
    None. After a ``truncated`` or ``bad_length`` problem the framing is lost
    and no record follows; after ``bad_checksum`` reading goes on.
    """

    index: int
    offset: int
    data: bytes | None
    problem: str = ""
    reason: str = ""


def _open(path: str | os.PathLike[str] | RemotePath, **remote: Any) -> tuple[IO[bytes], int]:
    """`path` opened for reading and its size: a local file with plain ``open()``, a URL
    (``gs://...``) through fsspec (`tpru.sources.remote`, `remote`: its open options)."""
    if isinstance(path, RemotePath):
        return open_remote(path, **remote)
    if is_url(text := os.fspath(path)):
        return open_remote(text, **remote)
    file = open(text, "rb")  # noqa: SIM115 (the caller's with closes it)
    return file, os.fstat(file.fileno()).st_size


def iter_records(path: str | os.PathLike[str] | RemotePath) -> Iterator[Record]:
    """The records of one TFRecord file, in order, one in memory at a time.

    Raises:
        OSError: the file cannot be opened.
    """
    opened, size = _open(path)
    with opened as file:
        index = 0
        while True:
            record = _read(file, size, index)
            if record is None:
                return
            yield record
            if record.data is None and record.reason != "bad_checksum":
                return
            index += 1


@dataclass(frozen=True)
class Span:
    """Where one record of a TFRecord file lies, found from its 12-byte header alone.

    ``offset`` is where the record starts and ``length`` its data's size; ``read``
    is the bytes read to find it (its header). ``problem`` and ``reason``
    (``truncated``, ``bad_length``) are set for a header that cannot be framed, as in
    `Record`; the data's checksum is not checked here (`read_record` does).
    """

    index: int
    offset: int
    length: int
    read: int
    problem: str = ""
    reason: str = ""


def iter_spans(path: str | os.PathLike[str] | RemotePath) -> Iterator[Span]:
    """The records of one TFRecord file, found by reading each header and seeking past
    its data: a shard of large records is listed without reading them. It stops after a
    span with a problem (the rest of the file cannot be framed).

    Raises:
        OSError: the file cannot be opened or read.
    """
    # Remote: no read-ahead cache, so a header read fetches its 12 bytes, not a block.
    opened, size = _open(path, cache_type="none")
    with opened as file:
        index = offset = 0
        while offset < size:
            file.seek(offset)
            header = file.read(_HEADER.size)
            if len(header) < _HEADER.size:
                yield Span(index, offset, 0, len(header), f"the file ends {len(header)} bytes "
                           "into a record header (truncated)", "truncated")
                return
            length, length_crc = _HEADER.unpack(header)
            if masked_crc(header[:8]) != length_crc:
                yield Span(index, offset, 0, len(header), "the record's length fails its "
                           "checksum (damaged; the rest of the file cannot be framed)",
                           "bad_length")
                return
            end = offset + _HEADER.size + length + _FOOTER.size
            if end > size:
                yield Span(index, offset, length, len(header), f"the record needs "
                           f"{end - offset} bytes, the file has {size - offset} left "
                           "(truncated)", "truncated")
                return
            yield Span(index, offset, length, len(header))
            index, offset = index + 1, end


def read_record(path: str | os.PathLike[str] | RemotePath, offset: int, index: int) -> Record:
    """The record that starts at byte `offset` of a TFRecord file (`index`: its position,
    for the record's name), its framing checked as `iter_records` checks it.

    Raises:
        OSError: the file cannot be opened.
    """
    opened, size = _open(path)
    with opened as file:
        file.seek(offset)
        return _read(file, size, index) or Record(index, offset, None, "the file ends "
                                                  "before this record (truncated)", "truncated")


def _read(file: IO[bytes], size: int, index: int) -> Record | None:
    """The record at `file`'s position (None at the end of the file), the position left
    after it. A record without data says why (``truncated``, ``bad_length``: the
    rest of the file cannot be framed; ``bad_checksum``: the next record can)."""
    offset = file.tell()
    header = file.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        return Record(index, offset, None, f"the file ends {len(header)} bytes into a "
                      "record header (truncated)", "truncated")
    length, length_crc = _HEADER.unpack(header)
    if masked_crc(header[:8]) != length_crc:
        return Record(index, offset, None, "the record's length fails its checksum "
                      "(damaged; the rest of the file cannot be framed)", "bad_length")
    end = offset + _HEADER.size + length + _FOOTER.size
    if end > size:
        return Record(index, offset, None, f"the record needs {end - offset} bytes, the "
                      f"file has {size - offset} left (truncated)", "truncated")
    data = file.read(length)
    (data_crc,) = _FOOTER.unpack(file.read(_FOOTER.size))
    if masked_crc(data) != data_crc:
        return Record(index, offset, None, "the record's data fails its checksum (damaged)",
                      "bad_checksum")
    return Record(index, offset, data)


_LAST: tuple[str, int, Mapping[str, Any]] | None = None
"""The record this process parsed last (`remember_example`): its file, offset, features."""


def _file_key(path: str | os.PathLike[str] | RemotePath) -> str:
    """A file as a frame reference names it (a URL whole, a local path as given)."""
    return str(path) if isinstance(path, RemotePath) else os.fspath(path)


def remember_example(path: str | os.PathLike[str] | RemotePath, offset: int,
                     features: Mapping[str, Any]) -> None:
    """Keep the features of the record at `offset` of `path`, just read and checked, in
    place of the last ones kept: a process that makes an episode from a record and then
    reads its frames (one build process, or a worker doing both) reads the record once."""
    global _LAST
    _LAST = (_file_key(path), offset, features)


def recall_example(path: str | os.PathLike[str] | RemotePath, offset: int
                   ) -> Mapping[str, Any] | None:
    """The features `remember_example` kept for this record, or None."""
    if _LAST is not None and _LAST[0] == _file_key(path) and _LAST[1] == offset:
        return _LAST[2]
    return None


def parse_example(data: bytes) -> Mapping[str, Any]:
    """The features of a serialized ``tf.train.Example``: key -> ``Feature``.

    Raises:
        ValueError: `data` is not an Example.
    """
    try:
        return Example.FromString(data).features.feature  # type: ignore[no-any-return]
    except DecodeError as err:
        raise ValueError(f"not a tf.train.Example ({err})") from None


def feature_values(feature: Any) -> list[Any]:
    """The values of one ``Feature`` (bytes, floats or ints), whichever list it holds."""
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []
