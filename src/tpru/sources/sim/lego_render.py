"""How `tpru.sources.sim.lego` turns LDraw text into frames: LeoCAD, Xvfb and compositing.

It holds the X server LeoCAD needs even to render (`XServer`), the one
LeoCAD call that renders every step of a model (`run_leocad`), the crop that
fills the frame with the model (`framed`) and the backdrop each render is
composited onto (`backdrop_image`, one of the few `BACKDROPS` all episodes
share). They are apart from the simulator so that its episode logic reads
without the details of driving an external program.

LeoCAD alone does not make frames byte-identical: it draws parts in an order
that changes from run to run. `run_leocad` gives every part one edge colour
(`EDGE_COLOUR`, through the library copy `_overlay` makes) and moves each
kind of part apart by a fraction of an LDraw unit (`_tie_broken`): then the
draw order never decides a pixel.
"""

from __future__ import annotations

import logging
import os
import re
import select
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from tpru.sources.sim.common import SimError

log = logging.getLogger(__name__)

BACKDROPS: dict[str, tuple[int, int, int]] = {
    "cream": (238, 232, 218), "steel": (146, 160, 176), "night blue": (60, 70, 100),
}
"""A small pool of backdrops shared by all episodes, so other episodes' frames are plausible
candidates by look: one light, one middle and one dark, so each model gets one its colours
stand out on."""
MIN_CONTRAST = 40
"""Least difference in grey level (0-255) between the backdrop and every colour of the model."""
RENDER_TIMEOUT_S = 300
EDGE_COLOUR = "#333333"
"""The one colour of every part's edge lines (LDraw's usual one; black parts have #808080).

LeoCAD draws parts in an order that changes from run to run (it sorts them by
memory address, and parts load in parallel), and where the edges of two parts
meet, the colour drawn last wins; with one edge colour, frames are the same
whatever the order."""
TIE_LIFT = 0.05
"""LDraw units each kind of part is moved beyond the previous kind (see `_tie_broken`)."""
TIE_DIRECTION = (0.37, -1.0, 0.23)
"""Up (-Y), and a little along X and Z, so that ties on vertical faces are settled too."""
LEOCAD_OPTIONS = ("--no-fade-steps", "--no-highlight", "--shading", "full", "--aa-samples", "4")
"""Rendering options given explicitly, so LeoCAD's defaults or settings never change frames."""
RENDER_SCALE = 1.5
"""Steps are rendered this much larger than the frames, then cropped around the model."""
MAX_RENDER_SIDE = 4096
FRAME_MARGIN = 0.04
"""Space left around the finished model in a frame, as a share of the frame's size."""


class XServer:
    """One Xvfb display, started on first use and stopped by `stop` (or at exit)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.display = ""

    def ensure(self) -> str:
        """The display name (``:N``), starting Xvfb if it is not running."""
        if self.process is not None and self.process.poll() is None:
            return self.display
        read, write = os.pipe()
        # -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten",
             "tcp", "-noreset"], pass_fds=(write,), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(write)
        with os.fdopen(read) as pipe:
            ready, _, _ = select.select([pipe], [], [], 30)
            number = pipe.readline().strip() if ready else ""
        if not number:
            self.stop()
            raise SimError("Xvfb did not start within 30 s")
        self.display = f":{number}"
        log.debug("Xvfb started on display %s", self.display)
        return self.display

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def run_leocad(ldr: str, size: tuple[int, int], camera: tuple[int, int], *, library: Path,
               home: Path, display: str) -> list[Image.Image]:
    """One RGBA image per ``0 STEP`` of the LDraw text `ldr`, from one LeoCAD call.

    Args:
        ldr: the model, one ``0 STEP`` after each step's parts.
        size: the images' width and height in pixels.
        camera: LeoCAD's camera angles (latitude, longitude) in degrees.
        library: the LDraw library folder.
        home: LeoCAD's own home folder; its settings and library copy stay there.
        display: the X display LeoCAD draws on (`XServer.ensure`).

    Raises:
        SimError: LeoCAD timed out or wrote fewer step images than the model has steps.
    """
    steps = sum(1 for line in ldr.splitlines() if line.strip().upper() == "0 STEP")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_RUNTIME_DIR": str(home), "DISPLAY": display,
           "QT_QPA_PLATFORM": "xcb", "LANG": "C.UTF-8"}
    with tempfile.TemporaryDirectory(prefix="model-", dir=home) as work:
        model = Path(work) / "model.ldr"
        model.write_text(_tie_broken(ldr), encoding="utf-8")
        command = ["leocad", "-l", str(_overlay(library, home / "library")),
                   "-i", str(Path(work) / "step.png"),
                   "-w", str(size[0]), "-h", str(size[1]), "-f", "1", "-t", str(steps),
                   "--camera-angles", str(camera[0]), str(camera[1]), *LEOCAD_OPTIONS,
                   str(model)]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=RENDER_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise SimError(f"LeoCAD took more than {RENDER_TIMEOUT_S} s") from None
        files = sorted(Path(work).glob("step*.png"),
                       key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
        if len(files) != steps:
            tail = " ".join((done.stderr or done.stdout).split()[-30:])
            raise SimError(f"LeoCAD wrote {len(files)} of {steps} step images "
                           f"(exit {done.returncode}): {tail}")
        images = []
        for path in files:
            with Image.open(path) as image:
                images.append(image.convert("RGBA"))
    return images


def _tie_broken(ldr: str) -> str:
    """`ldr` with each kind of part moved up by its own tiny step (`TIE_LIFT` times its rank).

    LeoCAD draws the parts in an order that changes from run to run, and an edge line lying
    exactly on another part's face (a brick's bottom edge on the brick below) shows or not
    depending on which is drawn last. Parts of one kind are drawn in file order, so moving
    each kind apart (along `TIE_DIRECTION`, off every axis-aligned face) settles every such
    tie by depth instead; a fraction of an LDraw unit is far below a pixel.
    """
    lines = [line.split() for line in ldr.splitlines()]
    kinds = sorted({f[14].lower() for f in lines if len(f) >= 15 and f[0] == "1"})
    rank = {kind: i for i, kind in enumerate(kinds)}
    out = []
    for fields in lines:
        if len(fields) >= 15 and fields[0] == "1":
            shift = TIE_LIFT * rank[fields[14].lower()]
            moved = [f"{float(v) + shift * d:.3f}" for v, d in zip(fields[2:5], TIE_DIRECTION,
                                                                   strict=True)]
            fields = [*fields[:2], *moved, *fields[5:]]
        out.append(" ".join(fields))
    return "\n".join(out) + "\n"


def _overlay(library: Path, folder: Path) -> Path:
    """`folder` made (once) into the library as LeoCAD should see it: links to its part
    folders, and its colour table with every edge colour set to `EDGE_COLOUR`."""
    if not (folder / "LDConfig.ldr").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for entry in library.iterdir():
            if entry.is_dir() and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
        config = library / "LDConfig.ldr"
        text = config.read_text(encoding="utf-8", errors="replace") if config.is_file() else ""
        text = re.sub(r"(EDGE\s+)#[0-9A-Fa-f]{6}", rf"\g<1>{EDGE_COLOUR}", text)
        (folder / "LDConfig.ldr").write_text(text, encoding="utf-8")
    return folder


def framed(renders: list[Image.Image], size: tuple[int, int]) -> list[Image.Image]:
    """The renders cropped to one box around the model as it looks at any step (so the
    camera stays put), widened to the frame's aspect ratio, and resized to `size`.

    LeoCAD's own framing leaves wide margins; filling the frame makes each step's new
    parts cover more of it.
    """
    boxes = [box for box in (image.getchannel("A").getbbox() for image in renders) if box]
    if not boxes:
        return [image.resize(size, Image.Resampling.LANCZOS) for image in renders]
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    width, height = renders[0].size
    aspect = size[0] / size[1]
    box_w = max(right - left, (bottom - top) * aspect) / (1 - 2 * FRAME_MARGIN)
    box_w = min(box_w, width, height * aspect)
    box_h = box_w / aspect
    cx = min(max((left + right) / 2, box_w / 2), width - box_w / 2)
    cy = min(max((top + bottom) / 2, box_h / 2), height - box_h / 2)
    crop = (cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2)
    return [image.resize(size, Image.Resampling.LANCZOS, box=crop) for image in renders]


def grey(rgb: tuple[int, int, int]) -> float:
    """The grey level (ITU-R 601) of an RGB colour, 0 to 255."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def backdrop_image(rng: np.random.Generator, colour: tuple[int, int, int],
                   size: tuple[int, int]) -> Image.Image:
    """An opaque RGBA backdrop: `colour`, a little darker towards the bottom, with a faint
    seeded grain that keeps frames sharp without hiding the model."""
    w, h = size
    shade = np.linspace(1.03, 0.93, h, dtype=np.float32)[:, None, None]
    grain = rng.integers(-4, 5, size=(h, w, 1)).astype(np.float32)
    pixels = np.clip(np.asarray(colour, np.float32)[None, None, :] * shade + grain, 0, 255)
    alpha = np.full((h, w, 1), 255, np.float32)
    return Image.fromarray(np.concatenate([pixels, alpha], axis=2).astype(np.uint8), "RGBA")
