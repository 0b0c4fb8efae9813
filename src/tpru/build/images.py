"""Reading one frame: decode it, measure it, and encode what the dataset stores.

Each frame is decoded once. From the decoded pixels come the stored image
(downscaled to ``ImageConfig.max_side``, or the source JPEG byte for byte when
it is already within bounds, so a frame is never compressed twice) and a small
analysis image from which every measurement is taken: sharpness (variance of
the Laplacian), a 64-bit perceptual hash, a 16x16 grey thumbnail, and the
default embedding.

Example:
    >>> from PIL import Image
    >>> img = Image.new("RGB", (64, 48), "white")
    >>> phash(analysis_grey(img, 64)) == phash(analysis_grey(img, 64))
    True
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from tpru.build.config import ImageConfig
from tpru.sources.base import LoadedFrame

THUMB_SIDE = 16
"""Side of the grey thumbnail used for pixel-difference checks."""

Image.MAX_IMAGE_PIXELS = 20000 * 20000  # refuse decompression bombs beyond this


@dataclass
class FrameMeasure:
    """What the builder keeps of one decoded frame."""

    stored: bytes
    """The bytes written to the dataset (JPEG or PNG)."""
    ext: str
    digest: str
    """Hex SHA-256 (first 32 characters) of ``stored``; the image's name."""
    width: int
    height: int
    """Size of the source frame, before downscaling."""
    sharpness: float
    phash: int
    thumb: np.ndarray
    """(16, 16) uint8 grey thumbnail."""
    analysis: Image.Image
    """Small RGB image the embedding is computed from."""


class FrameError(Exception):
    """A frame that cannot be used; ``reason`` is the counted key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def measure_frame(frame: LoadedFrame, config: ImageConfig) -> FrameMeasure:
    """Decode `frame`, measure it and encode its stored form.

    Raises:
        FrameError: ``unreadable_image`` or ``truncated_image``, with a
            message that names the file.
    """
    if frame.error is not None:
        raise FrameError(frame.error, frame.message)
    if frame.image is not None:
        image = _normalise_mode(frame.image)
        return _measure_decoded(image, None, config)
    assert frame.data is not None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(frame.data))
            passthrough = _can_pass_through(image, config)
            if passthrough:
                # Within bounds: keep the file's bytes and decode small for analysis.
                image.draft("RGB", (config.analysis_side, config.analysis_side))
            image.load()
            image = _normalise_mode(ImageOps.exif_transpose(image) or image)
    except OSError as err:
        text = str(err)
        lowered = text.lower()
        reason = "truncated_image" if "truncated" in lowered or "broken data" in lowered else \
            "unreadable_image"
        raise FrameError(reason, f"{frame.ref}: {reason.replace('_', ' ')} ({text})") from None
    except (ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as err:
        raise FrameError("unreadable_image", f"{frame.ref}: unreadable image ({err})") from None
    if passthrough:
        width, height = _declared_size(frame.data)
        return _measure_decoded(image, frame.data, config, size=(width, height))
    return _measure_decoded(image, None, config)


def _can_pass_through(image: Image.Image, config: ImageConfig) -> bool:
    if config.format != "jpeg" or image.format != "JPEG" or image.mode not in ("RGB", "L"):
        return False
    if max(image.size) > config.max_side:
        return False
    orientation = image.getexif().get(0x0112, 1)
    return bool(orientation in (None, 1))


def _declared_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _normalise_mode(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _measure_decoded(image: Image.Image, stored: bytes | None, config: ImageConfig,
                     size: tuple[int, int] | None = None) -> FrameMeasure:
    width, height = size or image.size
    if stored is None:
        stored_image = image
        if max(image.size) > config.max_side:
            stored_image = image.copy()
            stored_image.thumbnail((config.max_side, config.max_side),
                                   Image.Resampling.BICUBIC, reducing_gap=2.0)
        stored = encode(stored_image, config)
        image = stored_image
    analysis = image
    if max(image.size) > config.analysis_side:
        analysis = image.copy()
        analysis.thumbnail((config.analysis_side, config.analysis_side),
                           Image.Resampling.BILINEAR, reducing_gap=2.0)
    grey = np.asarray(analysis.convert("L"), dtype=np.float32)
    return FrameMeasure(
        stored=stored,
        ext="jpg" if config.format == "jpeg" else "png",
        digest=hashlib.sha256(stored).hexdigest()[:32],
        width=width,
        height=height,
        sharpness=laplacian_variance(grey),
        phash=phash(grey),
        thumb=thumbnail(grey),
        analysis=analysis,
    )


def encode(image: Image.Image, config: ImageConfig) -> bytes:
    """The stored bytes of `image` (deterministic for the same pixels)."""
    buffer = io.BytesIO()
    if config.format == "jpeg":
        image.save(buffer, "JPEG", quality=config.quality, optimize=False)
    else:
        image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def analysis_grey(image: Image.Image, side: int) -> np.ndarray:
    """Grey float32 pixels of `image` downscaled to fit `side`."""
    small = image.copy()
    small.thumbnail((side, side), Image.Resampling.BILINEAR)
    return np.asarray(small.convert("L"), dtype=np.float32)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low for blurred frames."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = (grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1]
           - 4.0 * grey[1:-1, 1:-1])
    return float(lap.var())


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    result: np.ndarray = m.astype(np.float32)
    return result


_DCT32 = _dct_matrix(32)


def _resize_array(grey: np.ndarray, side: int) -> np.ndarray:
    img = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    return np.asarray(img.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)


def phash(grey: np.ndarray) -> int:
    """64-bit perceptual hash: signs of the 8x8 lowest DCT frequencies against their median."""
    small = _resize_array(grey, 32)
    coeffs = _DCT32 @ small @ _DCT32.T
    low = coeffs[:8, :8].ravel()
    bits = low > np.median(low)
    return int(np.packbits(bits).view(">u8")[0])


def thumbnail(grey: np.ndarray) -> np.ndarray:
    """(16, 16) uint8 grey thumbnail."""
    result: np.ndarray = np.clip(_resize_array(grey, THUMB_SIDE), 0, 255).astype(np.uint8)
    return result


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return (a ^ b).bit_count()


def thumb_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, 0 (same) to 1."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() / 255.0)
