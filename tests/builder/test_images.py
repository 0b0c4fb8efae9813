"""Frame measurement: decode errors, blur, hashes, stored form."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from tpru.builder.config import BuildConfig, FilterConfig, ImageConfig
from tpru.builder.images import (
    FrameError,
    analysis_grey,
    frame_change,
    hamming,
    laplacian_variance,
    measure_frame,
    phash,
    thumb_diff,
)
from tpru.builder.measure import measure_episode
from tpru.schema import Episode
from tpru.sources.base import LoadedFrame


def scene(seed: int, size: tuple[int, int] = (320, 240), shift: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    draw.rectangle([40 + shift, 60, 120 + shift, 140], fill=(220, 30, 30), outline=(0, 0, 0))
    draw.text((10, 10), "step", fill=(255, 255, 255))
    return image


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_jpeg_within_bounds_is_stored_byte_for_byte() -> None:
    data = jpeg(scene(0))
    m = measure_frame(LoadedFrame("a.jpg", data=data), ImageConfig(max_side=640))
    assert m.stored == data and (m.width, m.height) == (320, 240) and m.ext == "jpg"


def test_large_frames_are_downscaled_once() -> None:
    data = jpeg(scene(0, size=(1280, 960)))
    m = measure_frame(LoadedFrame("a.jpg", data=data), ImageConfig(max_side=400))
    stored = Image.open(io.BytesIO(m.stored))
    assert stored.size == (400, 300) and (m.width, m.height) == (1280, 960)


def test_png_with_alpha_becomes_rgb_and_png_format_is_kept() -> None:
    rgba = scene(1).convert("RGBA")
    rgba.putalpha(128)
    m = measure_frame(LoadedFrame("a.png", data=png(rgba)), ImageConfig(format="png"))
    stored = Image.open(io.BytesIO(m.stored))
    assert stored.format == "PNG" and stored.mode == "RGB" and m.ext == "png"


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_truncated_and_corrupt_files_are_named(kind: str) -> None:
    data = jpeg(scene(2)) if kind == "jpeg" else png(scene(2))
    with pytest.raises(FrameError) as err:
        measure_frame(LoadedFrame("ep/003.img", data=data[: len(data) // 2]), ImageConfig())
    assert err.value.reason in ("truncated_image", "unreadable_image")
    assert "ep/003.img" in str(err.value)
    with pytest.raises(FrameError) as err:
        measure_frame(LoadedFrame("ep/004.img", data=b"not an image at all"), ImageConfig())
    assert err.value.reason == "unreadable_image" and "ep/004.img" in str(err.value)


def test_a_file_pillow_cannot_identify_gives_a_message_without_an_address() -> None:
    with pytest.raises(FrameError) as err:
        measure_frame(LoadedFrame("ep/005.png", data=b"text named like a PNG"), ImageConfig())
    # Pillow's own message holds "<_io.BytesIO object at 0x7f...>": a new address each run.
    assert str(err.value) == "ep/005.png: unreadable image (not a recognised image format)"


def test_a_16_bit_grey_png_keeps_its_picture() -> None:
    grey = np.asarray(scene(4).convert("L"), dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(grey * 257).save(buf, "PNG")  # 0-255 stretched to the 16-bit range
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    sharp = measure_frame(LoadedFrame("depth.png", data=jpeg(scene(4))), ImageConfig())
    m = measure_frame(LoadedFrame("depth.png", data=data), ImageConfig(format="png"))
    stored = np.asarray(Image.open(io.BytesIO(m.stored)).convert("L"), dtype=np.int16)
    assert np.abs(stored - grey).max() <= 1  # value >> 8, not every pixel clipped to white
    assert m.sharpness > 0.5 * sharp.sharpness
    assert hamming(m.phash, sharp.phash) <= 8


def test_missing_file_reason_passes_through() -> None:
    with pytest.raises(FrameError) as err:
        measure_frame(LoadedFrame("x.jpg", error="missing_file", message="x.jpg: no such file"),
                      ImageConfig())
    assert err.value.reason == "missing_file"


def test_blur_separates_sharp_from_blurred() -> None:
    """With the default analysis size and threshold, blurred frames fall below it."""
    threshold = FilterConfig().blur_threshold
    for size in ((320, 240), (640, 480)):
        sharp = scene(3, size=size)
        s = measure_frame(LoadedFrame("s.jpg", data=jpeg(sharp)), ImageConfig()).sharpness
        assert s > 2 * threshold, (size, s)
        for radius in (4, 8):
            blurred = sharp.filter(ImageFilter.GaussianBlur(radius * size[0] / 320))
            b = measure_frame(LoadedFrame("b.jpg", data=jpeg(blurred)),
                              ImageConfig()).sharpness
            assert b < threshold, (size, radius, b)
    assert laplacian_variance(np.zeros((2, 2), np.float32)) == 0.0


def test_phash_and_thumbs_see_duplicates_and_changes() -> None:
    a = analysis_grey(scene(4), 128)
    a_again = analysis_grey(Image.open(io.BytesIO(jpeg(scene(4), quality=60))), 128)
    moved = analysis_grey(scene(4, shift=150), 128)
    other = analysis_grey(scene(5), 128)
    assert hamming(phash(a), phash(a_again)) <= 4
    assert thumb_diff(
        np.asarray(Image.fromarray(a.astype(np.uint8)).resize((16, 16))),
        np.asarray(Image.fromarray(a_again.astype(np.uint8)).resize((16, 16)))) < 0.01
    assert hamming(phash(a), phash(other)) > 10
    assert hamming(phash(a), phash(moved)) > 0


def test_a_change_of_colour_alone_is_not_a_near_duplicate(tmp_path: Path) -> None:
    """A red square turning green of the same grey level (a toggle, a brick swapped) is a
    step: grey hashes and thumbnails barely move, the colour thumbnail does."""
    def frame(colour: tuple[int, int, int]) -> bytes:
        image = scene(7)
        ImageDraw.Draw(image).rectangle([180, 40, 260, 120], fill=colour)
        return png(image)

    red, green = (200, 50, 50), (50, 127, 49)  # grey levels 94.8 and 94.8
    rule, config = FilterConfig(), ImageConfig()
    a = measure_frame(LoadedFrame("red.png", data=frame(red)), config)
    b = measure_frame(LoadedFrame("green.png", data=frame(green)), config)
    # The grey rule alone would call them duplicates...
    assert hamming(a.phash, b.phash) <= rule.dup_hamming
    assert thumb_diff(a.thumb, b.thumb) <= rule.dup_pixel_diff
    # ...the builder's rule sees the change.
    assert frame_change(a.look, b.look) > 2 * rule.dup_pixel_diff

    for name, colour in (("0", red), ("1", green), ("2", red), ("3", green)):
        (tmp_path / f"{name}.png").write_bytes(frame(colour))
    episode = Episode(id="toggle", scenario="gui", source="test",
                      frames=tuple(str(tmp_path / f"{k}.png") for k in range(4)))
    config_all = BuildConfig(filter=FilterConfig(blur_threshold=0))
    result = measure_episode(episode, 0, config_all, tmp_path / "stage")
    assert result.record["drops"] == {}
    assert len(result.record["frames"]) == 4
