"""Benchmark images as files: whatever form a benchmark stores them in.

Images are materialised into the cache folder as files named by their
content hash (``CACHE/ab/abcdef....png``), whatever form they arrive in: raw
bytes, ``{"bytes": ..., "path": ...}`` structs (parquet), base64 text (TSV),
PIL images (``datasets``) or paths (kept in place, resolved, when they exist).
Same bytes, same file: a benchmark loaded twice, or two benchmarks sharing
an image, write it once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tpru.eval.benchmarks.common import RowError

_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")
_DATA_URI = re.compile(r"^data:image/[\w.+-]+;base64,")


def store_image(value: Any, cache_dir: Path, base_dir: Path | None) -> str:
    """Materialise one image and return its file path.

    Bytes, base64 text, ``{"bytes": ..., "path": ...}`` and PIL images are
    written to ``cache_dir/<h[:2]>/<h>.<ext>`` where ``h`` is the first 32 hex
    digits of the SHA-256 of the bytes (written once; later calls find the
    file). A path to an existing file is returned resolved, without a copy,
    once its header shows it is an image.

    Raises:
        RowError: the value is not an image, or names a missing file or one
            that is not an image.
    """
    if isinstance(value, Mapping):
        data = value.get("bytes")
        if data:
            return store_image(data, cache_dir, base_dir)
        if value.get("path"):
            return store_image(str(value["path"]), cache_dir, base_dir)
        raise RowError("an image struct with neither bytes nor path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _write_bytes(bytes(value), cache_dir)
    if isinstance(value, str):
        return _store_text(value, cache_dir, base_dir)
    if hasattr(value, "save") and hasattr(value, "mode"):  # a PIL image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return _write_bytes(buffer.getvalue(), cache_dir)
    raise RowError(f"cannot read an image from a {type(value).__name__}")


def _store_text(value: str, cache_dir: Path, base_dir: Path | None) -> str:
    stripped = _DATA_URI.sub("", value.strip())
    if len(stripped) < 4096:  # longer text is no path
        path = Path(stripped).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            if path.is_file():
                _check_image_file(path)
                return str(path.resolve())
        except OSError:  # base64 text longer than a file name may be
            pass
    if len(stripped) >= 16 and _BASE64.match(stripped[:4096]) is not None:
        try:
            data = base64.b64decode("".join(stripped.split()), validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if data:
            return _write_bytes(data, cache_dir)
    shown = stripped if len(stripped) <= 80 else stripped[:77] + "..."
    raise RowError(f"image {shown!r} is neither base64 nor an existing file")


def _check_image_file(path: Path) -> None:
    """Refuse a file that is not an image (``/etc/passwd``), reading only its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        Image.open(path).close()  # opening reads the header: enough to tell an image
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        reason = "not an image" if isinstance(err, UnidentifiedImageError) else str(err)
        raise RowError(f"image {str(path)!r} is a file but {reason}") from None


_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp",
               "TIFF": "tif", "MPO": "jpg"}


def _write_bytes(data: bytes, cache_dir: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
    except (UnidentifiedImageError, OSError):
        raise RowError(f"{len(data)} bytes that are not an image") from None
    digest = hashlib.sha256(data).hexdigest()[:32]
    path = cache_dir / digest[:2] / f"{digest}.{_EXTENSIONS.get(kind, kind.lower() or 'img')}"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # concurrent loaders write the same bytes; last rename wins
    return str(path.resolve())
