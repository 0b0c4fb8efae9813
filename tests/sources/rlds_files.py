"""Small RLDS datasets in exactly the layout TFDS writes, made without TensorFlow.

A dataset folder ``<name>/<version>/`` gets ``dataset_info.json`` and
``features.json`` shaped as ``tensorflow_datasets`` 4.9 writes them, and
``<name>-<split>.tfrecord-0000k-of-0000n`` shards: TFRecord framing (length,
masked CRC-32C of the length, data, masked CRC-32C of the data) around one
serialized ``tf.train.Example`` per episode, nested features flattened into
``/``-joined keys as TFDS's example serializer does (booleans as int64).

The Example bytes are encoded here by hand from the field numbers of
TensorFlow's ``feature.proto``/``example.proto``, so these files check the
reader's message definition rather than share it.

Frames are `lerobot_fixtures.frame_pixels`: the grey level tells the episode
(`episode_of`), the bright bar's column the step (`bar_of`). ``wrist_image``
shows the steps in reverse, so a test can tell the cameras apart.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crc32c
from lerobot_fixtures import SIZE, frame_pixels
from PIL import Image

STEP_LANGUAGE = "steps/language_instruction"
RT1_LANGUAGE = "steps/observation/natural_language_instruction"
_TFDS = "tensorflow_datasets.core.features."


@dataclass(frozen=True)
class Ep:
    """One episode to write: `number` picks its picture; `text` is its instruction, or one
    instruction per step."""

    number: int
    length: int
    text: str | Sequence[str] = ""
    shown: Sequence[int] | None = None
    """Which step's picture each step shows (default its own)."""
    broken: Sequence[int] = ()
    """Steps whose image bytes are cut in half (an undecodable image)."""


# ---------------------------------------------------------------- protobuf wire format


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(values: Sequence[Any], kind: str) -> bytes:
    """A ``tensorflow.Feature``: bytes_list = 1, float_list = 2, int64_list = 3."""
    if kind == "bytes":
        inner = b"".join(_field(1, v) for v in values)
        return _field(1, inner)
    if kind == "float":
        return _field(2, _field(1, struct.pack(f"<{len(values)}f", *values)))
    return _field(3, _field(1, b"".join(_varint(int(v)) for v in values)))


def example(features: Mapping[str, tuple[Sequence[Any], str]]) -> bytes:
    """A serialized ``tensorflow.Example``: ``features`` (1) holding the map ``feature`` (1)
    of ``key -> Feature`` entries (key = 1, value = 2)."""
    entries = b"".join(_field(1, _field(1, key.encode()) + _field(2, _feature(values, kind)))
                       for key, (values, kind) in features.items())
    return _field(1, entries)


def masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(records: Sequence[bytes]) -> bytes:
    out = bytearray()
    for data in records:
        length = struct.pack("<Q", len(data))
        out += length + struct.pack("<I", masked_crc(length))
        out += data + struct.pack("<I", masked_crc(data))
    return bytes(out)


# ---------------------------------------------------------------- features.json


def _tensor(shape: Sequence[int], dtype: str, cls: str = "tensor_feature.Tensor") -> dict[str, Any]:
    dims = {"dimensions": [str(d) for d in shape]} if shape else {}
    return {"pythonClassName": _TFDS + cls,
            "tensor": {"shape": dims, "dtype": dtype, "encoding": "none"}}


def _scalar(dtype: str) -> dict[str, Any]:
    return _tensor((), dtype, "scalar.Scalar")


def _text() -> dict[str, Any]:
    return {"pythonClassName": _TFDS + "text_feature.Text", "text": {}}


def _image(encoding: str) -> dict[str, Any]:
    return {"pythonClassName": _TFDS + "image_feature.Image",
            "image": {"shape": {"dimensions": [str(SIZE[1]), str(SIZE[0]), "3"]},
                      "dtype": "uint8", "encodingFormat": encoding}}


def _dict(features: Mapping[str, Any]) -> dict[str, Any]:
    return {"pythonClassName": _TFDS + "features_dict.FeaturesDict",
            "featuresDict": {"features": dict(sorted(features.items()))}}


def _put(tree: dict[str, Any], key: str, leaf: dict[str, Any]) -> None:
    *parents, last = key.split("/")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = leaf


def _as_features(tree: Mapping[str, Any]) -> dict[str, Any]:
    return _dict({k: v if "pythonClassName" in v else _as_features(v) for k, v in tree.items()})


def features_json(cameras: Sequence[str], language_key: str | None, string_tensor: bool,
                  encoding: str) -> dict[str, Any]:
    """``features.json`` of an RLDS dataset, as TFDS serializes its FeaturesDict."""
    step: dict[str, Any] = {
        "action": _tensor((7,), "float32"), "reward": _scalar("float32"),
        "discount": _scalar("float32"), "is_first": _scalar("bool"),
        "is_last": _scalar("bool"), "is_terminal": _scalar("bool"),
        "observation": {"state": _tensor((2,), "float32"),
                        **{camera: _image(encoding) for camera in cameras}},
    }
    top: dict[str, Any] = {"episode_metadata": {"file_path": _text()}}
    if language_key is not None:
        leaf = _tensor((), "string") if string_tensor else _text()
        if language_key.startswith("steps/"):
            _put(step, language_key.removeprefix("steps/"), leaf)
        else:
            _put(top, language_key, leaf)
    top["steps"] = {"pythonClassName": _TFDS + "dataset_feature.Dataset",
                    "sequence": {"feature": _as_features(step), "length": "-1"}}
    return _as_features(top)


# ---------------------------------------------------------------- the dataset


def encode(pixels: Any, encoding: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG" if encoding == "png" else "JPEG", quality=95)
    return out.getvalue()


def episode_record(ep: Ep, cameras: Sequence[str], language_key: str | None,
                   encoding: str) -> bytes:
    """One episode as TFDS serializes it: every step feature flattened into one list."""
    n = ep.length
    texts = [ep.text] * n if isinstance(ep.text, str) else list(ep.text)
    features: dict[str, tuple[Sequence[Any], str]] = {
        "episode_metadata/file_path": ([f"/raw/episode_{ep.number}.h5".encode()], "bytes"),
        "steps/action": ([0.1 * k for k in range(n) for _ in range(7)], "float"),
        "steps/reward": ([float(k == n - 1) for k in range(n)], "float"),
        "steps/discount": ([1.0] * n, "float"),
        "steps/is_first": ([int(k == 0) for k in range(n)], "int"),
        "steps/is_last": ([int(k == n - 1) for k in range(n)], "int"),
        "steps/is_terminal": ([int(k == n - 1) for k in range(n)], "int"),
        "steps/observation/state": ([0.0] * (2 * n), "float"),
    }
    shown = list(ep.shown) if ep.shown is not None else list(range(n))
    for camera in cameras:
        order = shown[::-1] if camera == "wrist_image" else shown
        images = [encode(frame_pixels(ep.number, k), encoding) for k in order]
        features[f"steps/observation/{camera}"] = (
            [data[:len(data) // 2] if k in ep.broken else data for k, data in enumerate(images)],
            "bytes")
    if language_key is not None:
        values = texts if language_key.startswith("steps/") else texts[:1]
        features[language_key] = ([t.encode() for t in values], "bytes")
    return example(dict(sorted(features.items())))


def write_rlds(root: Path, splits: Mapping[str, Sequence[Ep]], *, name: str = "tiny_rlds",
               version: str = "1.0.0", shards: int = 1, cameras: Sequence[str] = ("image",),
               language_key: str | None = STEP_LANGUAGE, string_tensor: bool = False,
               encoding: str = "png") -> Path:
    """``root/<name>/<version>/``: each split's episodes in order over `shards` shards
    (the first shards take one more when they do not divide evenly). Returns the folder."""
    folder = root / name / version
    folder.mkdir(parents=True)
    info_splits = []
    for split, episodes in splits.items():
        count = min(shards, len(episodes)) or 1
        sizes = [len(episodes) // count + (i < len(episodes) % count) for i in range(count)]
        start, total = 0, 0
        for index, size in enumerate(sizes):
            records = [episode_record(ep, cameras, language_key, encoding)
                       for ep in episodes[start:start + size]]
            data = tfrecord(records)
            total += len(data)
            (folder / f"{name}-{split}.tfrecord-{index:05d}-of-{count:05d}").write_bytes(data)
            start += size
        info_splits.append({"filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
                            "name": split, "numBytes": str(total),
                            "shardLengths": [str(s) for s in sizes]})
    info = {"fileFormat": "tfrecord", "moduleName": "tiny_rlds.tiny_rlds_dataset_builder",
            "name": name, "releaseNotes": {version: "Initial release."},
            "splits": info_splits, "version": version}
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    (folder / "features.json").write_text(
        json.dumps(features_json(cameras, language_key, string_tensor, encoding), indent=4))
    return folder


def shard(folder: Path, split: str = "train", index: int = 0) -> Path:
    """The `index`-th shard file of `split`."""
    return sorted(folder.glob(f"*-{split}.tfrecord-*"))[index]
