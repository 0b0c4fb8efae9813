"""``sim:lego``: LEGO models built step by step, rendered by LeoCAD with the LDraw library.

Each episode is one model: a generated one (`tpru.sources.sim.lego_models`:
tower, wall, pyramid, house, mosaic, bridge) or one of the example models the
LDraw library ships (``car.ldr``, ``pyramid.ldr``; Debian puts them in
``/usr/share/ldraw/models``), recoloured from the seed. The model is written
as an LDraw file with one ``0 STEP`` per building step and rendered in a
single LeoCAD call that saves one PNG per step::

    leocad -l /usr/share/ldraw -i step.png -w W -h H -f 1 -t N --camera-angles LAT LON model.ldr

LeoCAD frames the finished model, so the camera stays put while the model
grows; the steps are rendered 1.5 times larger and cropped to one box around
the model, since LeoCAD leaves wide margins. Its renders are RGBA on a
transparent background; each is composited onto a seeded backdrop (a plain
colour with a faint texture, light, middle or dark so that every colour of
the model stands out on it) so frames are opaque and sharp. LeoCAD needs an
X display even to render, so the simulator starts one Xvfb server on first
use and keeps it for all its episodes; it runs LeoCAD with its own empty
home folder, so a user's LeoCAD settings never change the frames.

Frames are byte-identical for the same task, seed, frame count and size.
LeoCAD alone does not guarantee that (it draws parts in an order that
changes from run to run), so the simulator gives every part one edge colour
(`EDGE_COLOUR`) and moves each kind of part apart by a fraction of an LDraw
unit (`_tie_broken`): then the draw order never decides a pixel.

Install: ``scripts/setup-system.sh lego`` (Debian packages leocad, xvfb,
ldraw-parts from the non-free component).
"""

from __future__ import annotations

import logging
import os
import re
import select
import shutil
import subprocess
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

from tpru.sources.sim.common import (
    EngineMissing,
    EpisodeSpec,
    SimError,
    check_request,
    episode_rng,
    frame_name,
    join_words,
    save_frame,
)
from tpru.sources.sim.lego_models import (
    BRIGHT,
    BUILDERS,
    COLOURS,
    article,
    colour_run,
    number,
    to_ldr,
)

log = logging.getLogger(__name__)

INSTALL_HINT = ("needs LeoCAD, Xvfb and the LDraw parts library{missing}: run "
                "scripts/setup-system.sh lego (Debian packages leocad, xvfb, ldraw-parts "
                "from the non-free component)")
LIBRARY_PATHS = ("/usr/share/ldraw", "/usr/share/LDRAW", "/usr/local/share/ldraw")
"""Where the LDraw library is looked for when ``LDRAWDIR`` is not set."""

SAMPLES = {"example_car": "car.ldr", "example_pyramid": "pyramid.ldr"}
"""Tasks that build an example model of the library (``models/<file>``), when present."""

BACKDROPS: dict[str, tuple[int, int, int]] = {
    "cream": (238, 232, 218), "pale blue": (218, 228, 238), "pale green": (224, 234, 220),
    "pale lilac": (232, 224, 234), "light grey": (226, 226, 226), "sand": (236, 226, 206),
    "stone": (160, 158, 150), "sage": (150, 166, 146), "steel": (146, 160, 176),
    "slate": (84, 94, 108), "walnut": (96, 76, 60), "night blue": (60, 70, 100),
}
"""Light, middle and dark backdrops: each model gets one its colours stand out on."""
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
LATITUDES = {"example_pyramid": (50, 65), "mosaic": (45, 60)}
"""Camera height in degrees (default 20 to 40): flat and stepped models are seen from higher
up, so the small top layers of a pyramid still change much of the frame."""
LONGITUDES = {"wall": (15, 35)}
"""Camera angle from the front in degrees, either side (default 25 to 65): a thin wall is
seen nearly face on."""
RENDER_SCALE = 1.5
"""Steps are rendered this much larger than the frames, then cropped around the model."""
MAX_RENDER_SIDE = 4096
FRAME_MARGIN = 0.04
"""Space left around the finished model in a frame, as a share of the frame's size."""
MAX_PART_GROUPS = 5
"""A step text names at most this many kinds of part, then counts the rest."""


class _XServer:
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


def find_library() -> Path | None:
    """The LDraw library folder (``$LDRAWDIR`` or a standard place), or None."""
    candidates = [os.environ["LDRAWDIR"]] if os.environ.get("LDRAWDIR") else []
    for folder in [*candidates, *LIBRARY_PATHS]:
        if (Path(folder) / "parts" / "3001.dat").is_file():
            return Path(folder)
    return None


class LegoSim:
    """LEGO building episodes rendered by LeoCAD; one Xvfb server serves all episodes.

    Args:
        library: the LDraw library folder (default: `find_library`).

    Raises:
        EngineMissing: LeoCAD, Xvfb or the library is not installed.

    Example:
        >>> with LegoSim() as sim:                                    # doctest: +SKIP
        ...     spec = sim.render_episode("tower", 0, Path("ep"), frames=5, size=(320, 240))
        >>> spec.steps[1]                                             # doctest: +SKIP
        'adding two red 2x4 bricks side by side on top of the green plate'
    """

    name = "lego"

    def __init__(self, *, library: str | os.PathLike[str] | None = None) -> None:
        found = Path(library) if library is not None else find_library()
        missing = [program for program in ("leocad", "Xvfb") if shutil.which(program) is None]
        if found is None or not (found / "parts" / "3001.dat").is_file():
            missing.append(f"the LDraw library{f' at {found}' if found else ''}")
        if missing:
            raise EngineMissing(INSTALL_HINT.format(missing=f" (missing: {', '.join(missing)})"))
        assert found is not None
        self.library = found
        samples = tuple(t for t, f in SAMPLES.items() if (found / "models" / f).is_file())
        self.tasks: tuple[str, ...] = (*BUILDERS, *samples)
        self._server = _XServer()
        self._home: tempfile.TemporaryDirectory[str] | None = None
        self._colour_table: tuple[dict[int, str], dict[int, tuple[int, int, int]]] | None = None
        self._part_names: dict[str, str] = {}
        self._finalizer = weakref.finalize(self, self._server.stop)

    def render_episode(self, task: str, seed: int, frames_dir: Path, *, frames: int,
                       size: tuple[int, int]) -> EpisodeSpec:
        """Build one model of `task` from `seed` and write one frame per shown step."""
        check_request(self, task, frames, size)
        rng = episode_rng(self.name, task, seed)
        if task in SAMPLES:
            ldr, shown, texts, description, meta = self._sample(task, rng, frames)
        else:
            model = BUILDERS[task](rng, frames)
            ldr, shown = to_ldr(model), list(range(frames))
            texts, description, meta = [s.text for s in model.steps], model.description, \
                dict(model.meta)
        low, high = LATITUDES.get(task, (20, 40))
        west, east = LONGITUDES.get(task, (25, 65))
        camera = (int(rng.integers(low, high + 1)),
                  int(rng.choice([-1, 1]) * rng.integers(west, east + 1)))
        backdrop = self._backdrop_for(ldr, rng)
        scale = RENDER_SCALE if max(size) * RENDER_SCALE <= MAX_RENDER_SIDE else 1.0
        renders = _framed(self.render_steps(ldr, (round(size[0] * scale),
                                                  round(size[1] * scale)), camera), size)
        background = _backdrop(rng, BACKDROPS[backdrop], size)
        names = []
        for i, index in enumerate(shown):
            frame = background.copy()
            frame.alpha_composite(renders[index])
            names.append(frame_name(i, "jpg"))
            save_frame(frame.convert("RGB"), frames_dir / names[-1])
        meta.update({"task": task, "engine": "leocad", "camera_angles": list(camera),
                     "backdrop": backdrop, "steps_in_model": len(renders)})
        return EpisodeSpec(description=description,
                           steps=tuple(t[:1].upper() + t[1:] + "." for t in texts),
                           frames=tuple(names),
                           meta=meta)

    def render_steps(self, ldr: str, size: tuple[int, int],
                     camera: tuple[int, int]) -> list[Image.Image]:
        """One RGBA image per ``0 STEP`` of the LDraw text `ldr`, from one LeoCAD call."""
        steps = sum(1 for line in ldr.splitlines() if line.strip().upper() == "0 STEP")
        if self._home is None:
            self._home = tempfile.TemporaryDirectory(prefix="tpru-leocad-")
        home = Path(self._home.name)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
               "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
               "XDG_RUNTIME_DIR": str(home), "DISPLAY": self._server.ensure(),
               "QT_QPA_PLATFORM": "xcb", "LANG": "C.UTF-8"}
        with tempfile.TemporaryDirectory(prefix="model-", dir=home) as work:
            model = Path(work) / "model.ldr"
            model.write_text(_tie_broken(ldr), encoding="utf-8")
            command = ["leocad", "-l", str(_overlay(self.library, home / "library")),
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

    def close(self) -> None:
        """Stop the X server and remove LeoCAD's home folder; later renders start them anew."""
        self._server.stop()
        if self._home is not None:
            self._home.cleanup()
            self._home = None

    def __enter__(self) -> LegoSim:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    # The library's example models, recoloured from the seed.

    def _sample(self, task: str, rng: np.random.Generator,
                frames: int) -> tuple[str, list[int], list[str], str, dict[str, Any]]:
        """(LDraw text, shown step indices, a text per frame, description, meta)."""
        path = self.library / "models" / SAMPLES[task]
        original = _read_steps(path.read_text(encoding="utf-8", errors="replace"))
        steps = _regroup(original, frames, self._part_weight)
        if steps is None:
            raise SimError(f"{path} has too few parts for {frames} building steps")
        if task == "example_car":
            body, seat = colour_run(rng, 2, palette=[c for c in BRIGHT if c != "black"])
            recolour = {4: COLOURS[body], 1: COLOURS[seat]}
            description = (f"building the LDraw example car with {article(body)} body and "
                           f"{article(seat)} seat, from the black chassis to the roof and the "
                           "wheels")
            meta: dict[str, Any] = {"body": body, "seat": seat}
        else:
            a, b, c, d = colour_run(rng, 4)
            recolour = {1: COLOURS[a], 4: COLOURS[b], 14: COLOURS[c], 0: COLOURS[d]}
            description = (f"building the LDraw example pyramid: {article(a)} ring of 2x4 "
                           f"bricks, {article(b)} ring on it, two {c} 2x4 bricks and "
                           f"{article(d)} 2x2 brick on top")
            meta = {"layers": [a, b, c, d]}
        steps = [[_recoloured(line, recolour) for line in step] for step in steps]
        texts = ["adding " + self._parts_text(step) for step in steps]
        ldr = "\n".join([f"0 {description}", "0 Name: model.ldr", ""]
                        + [line for step in steps for line in [*step, "0 STEP"]]) + "\n"
        meta["model"] = SAMPLES[task]
        return ldr, list(range(frames)), texts, description, meta

    def _parts_text(self, lines: list[str]) -> str:
        """``"two black 1x4 plates and a red 2x4 brick"`` for type-1 LDraw lines."""
        counts: Counter[tuple[str, str]] = Counter()
        for line in lines:
            fields = line.split()
            counts[(self._colour_name(int(fields[1])), self._part_name(fields[14]))] += 1
        words = []
        for (colour, part), count in counts.items():
            if count == 1:
                words.append(f"{article(colour)} {part}")
            else:
                head, sep, tail = part.partition(" with ")
                plural = head if head.endswith("s") else head + "s"
                words.append(f"{number(count)} {colour} {plural}{sep}{tail}")
        if len(words) > MAX_PART_GROUPS:
            others = sum(counts.values()) - sum(list(counts.values())[:MAX_PART_GROUPS - 1])
            words = [*words[:MAX_PART_GROUPS - 1], f"{number(others)} other parts"]
        return join_words(words)

    def _part_weight(self, line: str) -> int:
        """The footprint in studs of the part on a type-1 line (4 when the name has none)."""
        match = re.match(r"(\d+)x(\d+)", self._part_name(line.split()[14]))
        return int(match[1]) * int(match[2]) if match else 4

    def _colour_name(self, code: int) -> str:
        return self._colours()[0].get(code, f"colour {code}")

    def _colours(self) -> tuple[dict[int, str], dict[int, tuple[int, int, int]]]:
        """Names (ours first, then LDConfig's) and RGB values of the LDraw colour codes."""
        if self._colour_table is None:
            names = {code: name for name, code in COLOURS.items()}
            values: dict[int, tuple[int, int, int]] = {}
            config = self.library / "LDConfig.ldr"
            text = config.read_text(errors="replace") if config.is_file() else ""
            pattern = r"^0 !COLOUR\s+(\S+)\s+CODE\s+(\d+)\s+VALUE\s+#([0-9A-Fa-f]{6})"
            for match in re.finditer(pattern, text, re.MULTILINE):
                code = int(match[2])
                names.setdefault(code, match[1].replace("_", " ").lower())
                values[code] = (int(match[3][:2], 16), int(match[3][2:4], 16),
                                int(match[3][4:], 16))
            self._colour_table = (names, values)
        return self._colour_table

    def _backdrop_for(self, ldr: str, rng: np.random.Generator) -> str:
        """A seeded backdrop that differs by `MIN_CONTRAST` grey levels from every colour of
        the model, or the one that differs most when none does."""
        values = self._colours()[1]
        codes = {int(f[1]) for f in (line.split() for line in ldr.splitlines())
                 if len(f) >= 15 and f[0] == "1"}
        greys = [_grey(values[c]) for c in sorted(codes) if c in values]

        def contrast(name: str) -> float:
            return min((abs(_grey(BACKDROPS[name]) - g) for g in greys), default=255.0)

        names = sorted(BACKDROPS)
        good = [name for name in names if contrast(name) >= MIN_CONTRAST]
        return str(good[int(rng.integers(len(good)))]) if good else max(names, key=contrast)

    def _part_name(self, file: str) -> str:
        if file not in self._part_names:
            path = self.library / "parts" / file.lower().replace("\\", "/")
            first = path.read_text(errors="replace").split("\n", 1)[0] if path.is_file() else ""
            self._part_names[file] = _part_title(first) or file.rsplit(".", 1)[0]
        return self._part_names[file]


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


def _read_steps(text: str) -> list[list[str]]:
    """The type-1 (part) lines of an LDraw file, grouped by ``0 STEP``; empty steps dropped."""
    steps: list[list[str]] = [[]]
    for line in text.splitlines():
        fields = line.split()
        if fields[:2] == ["0", "STEP"]:
            steps.append([])
        elif len(fields) >= 15 and fields[0] == "1":
            steps[-1].append(" ".join(fields))
    return [step for step in steps if step]


def _regroup(steps: list[list[str]], count: int,
             weight: Callable[[str], int]) -> list[list[str]] | None:
    """The parts regrouped into exactly `count` steps of similar weight, in their order.

    The model's own steps are kept where possible: a step much lighter than the average
    (a single small brick on top) joins its lighter neighbour, the heaviest step is split at
    half its weight while there are too few, and the lightest neighbouring pair is merged
    while there are too many. None when there are fewer parts than steps.
    """
    if sum(len(step) for step in steps) < count:
        return None
    groups = [list(step) for step in steps if step]

    def total(group: list[str]) -> int:
        return sum(weight(line) for line in group)

    def merge(i: int) -> None:
        groups[i:i + 2] = [groups[i] + groups[i + 1]]

    mean = sum(map(total, groups)) / len(groups)
    light = [i for i, g in enumerate(groups) if total(g) < mean / 4]
    while light and len(groups) > 1:
        i = light[0]
        before = total(groups[i - 1]) if i > 0 else None
        after = total(groups[i + 1]) if i + 1 < len(groups) else None
        merge(i - 1 if after is None or (before is not None and before <= after) else i)
        light = [i for i, g in enumerate(groups) if total(g) < mean / 4]
    while len(groups) < count:
        i = max((k for k in range(len(groups)) if len(groups[k]) > 1),
                key=lambda k: total(groups[k]))
        running, cut = 0, 1
        for cut in range(1, len(groups[i])):
            running += weight(groups[i][cut - 1])
            if 2 * running >= total(groups[i]):
                break
        groups[i:i + 1] = [groups[i][:cut], groups[i][cut:]]
    while len(groups) > count:
        merge(min(range(len(groups) - 1),
                  key=lambda k: total(groups[k]) + total(groups[k + 1])))
    return groups


def _recoloured(line: str, recolour: dict[int, int]) -> str:
    fields = line.split()
    fields[1] = str(recolour.get(int(fields[1]), int(fields[1])))
    return " ".join(fields)


def _part_title(first_line: str) -> str:
    """``"2x4 brick"`` from a part file's title line ``0 Brick  2 x  4``."""
    title = " ".join(first_line.split()[1:]).lstrip("~")
    title = re.sub(r"\s*\([^)]*\)", "", title).strip()
    match = re.match(r"^([A-Za-z][A-Za-z ]*?) (\d+) x (\d+)(?: x (\d+))?(.*)$", title)
    if match is None:
        # "Tyre 6/50 x 8 Offset Tread": keep the words, drop the measurements.
        words = [w for w in title.split() if not any(ch.isdigit() for ch in w) and w != "x"]
        return " ".join(words).lower()
    kind, a, b, c, rest = match.groups()
    dims = f"{a}x{b}" + (f"x{c}" if c else "")
    return f"{dims} {kind.lower()}{rest.lower()}"


def _framed(renders: list[Image.Image], size: tuple[int, int]) -> list[Image.Image]:
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


def _grey(rgb: tuple[int, int, int]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _backdrop(rng: np.random.Generator, colour: tuple[int, int, int],
              size: tuple[int, int]) -> Image.Image:
    """An opaque RGBA backdrop: `colour`, a little darker towards the bottom, with a faint
    seeded grain that keeps frames sharp without hiding the model."""
    w, h = size
    shade = np.linspace(1.03, 0.93, h, dtype=np.float32)[:, None, None]
    grain = rng.integers(-4, 5, size=(h, w, 1)).astype(np.float32)
    pixels = np.clip(np.asarray(colour, np.float32)[None, None, :] * shade + grain, 0, 255)
    alpha = np.full((h, w, 1), 255, np.float32)
    return Image.fromarray(np.concatenate([pixels, alpha], axis=2).astype(np.uint8), "RGBA")
