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
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tpru.builder.config import ImageConfig
from tpru.sources.base import LoadedFrame

THUMB_SIDE = 16
"""Side of the grey thumbnail used for pixel-difference checks."""

SMALL_SIDE = 32
"""Side of the small image the perceptual hash and the default embedding are computed from."""

Image.MAX_IMAGE_PIXELS = 20000 * 20000  # refuse decompression bombs beyond this

_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
"""A Python object's default repr: its address differs from run to run, so a message
that held one would make two identical builds write different ``build.json`` files."""


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
    analysis: Image.Image
    """The RGB frame at its analysis size (see `analysis_factor`)."""
    small: np.ndarray
    """(32, 32, 3) uint8: the frame at 32x32, for hashes and the default embedding."""
    phash: int = 0
    """64-bit perceptual hash (set by `add_hashes`)."""
    thumb: np.ndarray = field(default_factory=lambda: np.zeros(THUMB_SIDE ** 2, np.uint8))
    """(256,) uint8 grey 16x16 thumbnail (set by `add_hashes`)."""
    colour: np.ndarray = field(default_factory=lambda: np.zeros(3 * THUMB_SIDE ** 2, np.uint8))
    """(768,) uint8 RGB 16x16 thumbnail (set by `add_hashes`): sees a change of colour
    that leaves the grey levels as they were (a toggle turning from red to green)."""

    @property
    def look(self) -> tuple[np.ndarray, np.ndarray]:
        """(grey, colour) thumbnails, as `frame_change` compares them."""
        return self.thumb, self.colour


class FrameError(Exception):
    """A frame that cannot be used; ``reason`` is the counted key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def measure_frame(frame: LoadedFrame, config: ImageConfig) -> FrameMeasure:
    """Decode `frame`, measure it and encode its stored form, hashes included.

    Raises:
        FrameError: as `decode_frame`.
    """
    measure = decode_frame(frame, config)
    add_hashes([measure])
    return measure


def decode_frame(frame: LoadedFrame, config: ImageConfig) -> FrameMeasure:
    """Decode `frame`, measure its sharpness and encode its stored form.

    The hashes are left for `add_hashes`, which computes them for many frames
    at once.

    Raises:
        FrameError: ``unreadable_image`` or ``truncated_image``, with a
            message that names the file.
    """
    if frame.error is not None:
        raise FrameError(frame.error, frame.message)
    if frame.image is not None:
        return _measure_decoded(_normalise_mode(frame.image), None, config)
    assert frame.data is not None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(frame.data))
            size = image.size
            passthrough = _can_pass_through(image, config)
            if passthrough:
                # Within bounds: keep the file's bytes, and let the JPEG decoder do the
                # analysis downscale (decoding at 1/2, 1/4 or 1/8 scale costs less).
                factor = analysis_factor(size, config.analysis_side)
                if factor > 1:
                    image.draft("RGB", (-(-size[0] // factor), -(-size[1] // factor)))
                image.load()
                image = _normalise_mode(image)
            else:
                image.load()
                image = _normalise_mode(ImageOps.exif_transpose(image) or image)
    except UnidentifiedImageError:
        # Pillow's message names the BytesIO object by its memory address: never repeat it.
        raise FrameError("unreadable_image", f"{frame.ref}: unreadable image (not a "
                         "recognised image format)") from None
    except OSError as err:
        text = _OBJECT_REPR.sub("the file", str(err))
        lowered = text.lower()
        reason = "truncated_image" if "truncated" in lowered or "broken data" in lowered else \
            "unreadable_image"
        raise FrameError(reason, f"{frame.ref}: {reason.replace('_', ' ')} ({text})") from None
    except (ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as err:
        text = _OBJECT_REPR.sub("the file", str(err))
        raise FrameError("unreadable_image", f"{frame.ref}: unreadable image ({text})") from None
    if passthrough:
        return _measure_decoded(image, frame.data, config, size=size)
    return _measure_decoded(image, None, config)


def analysis_factor(size: tuple[int, int], side: int) -> int:
    """The largest power of two that keeps the longer side at least `side` once divided.

    Frames are measured reduced by this factor, so a 640x480 and a 320x240
    frame are both measured at 320x240 with ``side=256``: no arbitrary
    resampling, and JPEGs reduce for free while decoding.
    """
    factor = 1
    while max(size) // (factor * 2) >= side:
        factor *= 2
    return factor


def _can_pass_through(image: Image.Image, config: ImageConfig) -> bool:
    if config.format != "jpeg" or image.format != "JPEG" or image.mode not in ("RGB", "L"):
        return False
    if max(image.size) > config.max_side:
        return False
    orientation = image.getexif().get(0x0112, 1)
    return bool(orientation in (None, 1))


def _normalise_mode(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited on white.

    16-bit grey frames (modes ``I;16*``, and ``I``, as 16-bit PNGs open) keep
    their top 8 bits (``value >> 8``): a fixed scale, so the frames of an
    episode stay comparable. Pillow's own conversion would clip every value
    above 255 to white.
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I"):
        levels = np.clip(np.asarray(image), 0, 0xFFFF).astype(np.uint16) >> 8
        return Image.fromarray(levels.astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def reduce_for_analysis(image: Image.Image, side: int) -> Image.Image:
    """`image` reduced by a power of two (box filter) to its analysis size."""
    factor = analysis_factor(image.size, side)
    return image.reduce(factor) if factor > 1 else image


def _measure_decoded(image: Image.Image, stored: bytes | None, config: ImageConfig,
                     size: tuple[int, int] | None = None) -> FrameMeasure:
    width, height = size or image.size
    if stored is None:
        if max(image.size) > config.max_side:
            image = image.copy()
            image.thumbnail((config.max_side, config.max_side), Image.Resampling.BICUBIC,
                            reducing_gap=2.0)
        stored = encode(image, config)
    analysis = reduce_for_analysis(image, config.analysis_side)
    # Hashes, thumbnail and the default embedding all come from one 32x32 image.
    small = analysis.resize((SMALL_SIDE, SMALL_SIDE), Image.Resampling.BILINEAR,
                            reducing_gap=2.0)
    return FrameMeasure(
        stored=stored,
        ext="jpg" if config.format == "jpeg" else "png",
        digest=hashlib.sha256(stored).hexdigest()[:32],
        width=width,
        height=height,
        sharpness=laplacian_variance(np.asarray(analysis.convert("L"))),
        analysis=analysis,
        small=np.asarray(small),
    )


def grey_levels(rgb: np.ndarray) -> np.ndarray:
    """Grey levels (float32, 0-255) of (..., 3) RGB pixels, with ITU-R 601 weights."""
    result: np.ndarray = rgb.astype(np.float32) @ _LUMA
    return result


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def add_hashes(measures: Sequence[FrameMeasure]) -> None:
    """Set `phash`, `thumb` and `colour` of many frames at once (numpy over the batch)."""
    if not measures:
        return
    small = np.stack([m.small for m in measures])  # (n, 32, 32, 3)
    grey = grey_levels(small)  # (n, 32, 32)
    hashes = phash_batch(grey)
    n = len(measures)
    thumbs = grey.reshape(n, THUMB_SIDE, 2, THUMB_SIDE, 2).mean(axis=(2, 4))
    thumbs = np.rint(thumbs).clip(0, 255).astype(np.uint8).reshape(n, THUMB_SIDE ** 2)
    colours = small.reshape(n, THUMB_SIDE, 2, THUMB_SIDE, 2, 3).mean(axis=(2, 4))
    colours = np.rint(colours).clip(0, 255).astype(np.uint8).reshape(n, 3 * THUMB_SIDE ** 2)
    for m, h, t, c in zip(measures, hashes.tolist(), thumbs, colours, strict=True):
        m.phash = int(h)
        m.thumb = t
        m.colour = c


def encode(image: Image.Image, config: ImageConfig) -> bytes:
    """The stored bytes of `image` (deterministic for the same pixels)."""
    buffer = io.BytesIO()
    if config.format == "jpeg":
        image.save(buffer, "JPEG", quality=config.quality, optimize=False)
    else:
        image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def analysis_grey(image: Image.Image, side: int) -> np.ndarray:
    """Grey pixels (int16) of `image` at its analysis size (see `analysis_factor`)."""
    return np.asarray(reduce_for_analysis(image, side).convert("L"), dtype=np.int16)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of grey levels 0-255: low for blurred frames.

    Computed in integers (exact, and several times faster than in floats).
    """
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    g = grey.astype(np.int16, copy=False)
    lap = g[1:-1, :-2] + g[1:-1, 2:]
    lap += g[:-2, 1:-1]
    lap += g[2:, 1:-1]
    lap -= 4 * g[1:-1, 1:-1]
    flat = lap.ravel().astype(np.int64)
    n = flat.size
    mean = int(flat.sum()) / n
    return float(int(np.dot(flat, flat)) / n - mean * mean)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    result: np.ndarray = m.astype(np.float32)
    return result


_DCT8 = _dct_matrix(SMALL_SIDE)[:8].astype(np.float64)


def phash_batch(grey: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes of (n, 32, 32) grey images: signs of each image's 8x8
    lowest DCT frequencies against their median."""
    coeffs = (_DCT8 @ grey.astype(np.float64) @ _DCT8.T).reshape(len(grey), 64)
    bits = coeffs > np.median(coeffs, axis=1, keepdims=True)
    result: np.ndarray = np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)
    return result


def phash(grey: np.ndarray) -> int:
    """The perceptual hash of one grey image of any size (given as an array)."""
    image = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    small = image.resize((SMALL_SIDE, SMALL_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return int(phash_batch(np.asarray(small, dtype=np.float32)[None])[0])


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return (a ^ b).bit_count()


def thumb_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, 0 (same) to 1."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() / 255.0)


def frame_change(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """How much two frames differ, 0 to 1: the larger of the mean absolute differences of
    their (grey, colour) thumbnails, so a change of colour alone counts too."""
    return max(thumb_diff(a[0], b[0]), thumb_diff(a[1], b[1]))
