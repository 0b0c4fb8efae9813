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
transparent background; each is composited onto a backdrop (a plain colour
with a faint texture) so frames are opaque and sharp. The backdrop is one of
a pool of three that all episodes share (light, middle and dark, so that
every colour of the model stands out on one), so that frames of other
episodes are plausible candidates by look. LeoCAD needs an X display even
to render, so the simulator starts one Xvfb server on first use and keeps it
for all its episodes; it runs LeoCAD with its own empty home folder, so a
user's LeoCAD settings never change the frames.

Frames are byte-identical for the same task, seed, frame count and size.
LeoCAD alone does not guarantee that (it draws parts in an order that
changes from run to run), so the simulator gives every part one edge colour
and moves each kind of part apart by a fraction of an LDraw unit (see
`tpru.sources.sim.lego_render`): then the draw order never decides a pixel.

This module holds the simulator: episodes, camera and backdrop choices, and
the library's example models with their step texts. Running LeoCAD and
compositing the frames are in `tpru.sources.sim.lego_render`, reading LDraw
files in `tpru.sources.sim.lego_ldraw`, the generated models in
`tpru.sources.sim.lego_models` (with their parts in `lego_parts`).

Install: ``scripts/setup-system.sh lego`` (Debian packages leocad, xvfb,
ldraw-parts from the non-free component).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from collections import Counter
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
    save_frame,
)
from tpru.sources.sim.lego_ldraw import part_title, read_steps, recoloured, regroup
from tpru.sources.sim.lego_models import BUILDERS
from tpru.sources.sim.lego_parts import BRIGHT, COLOURS, colour_run, number, to_ldr
from tpru.sources.sim.lego_render import (
    BACKDROPS,
    MAX_RENDER_SIDE,
    MIN_CONTRAST,
    RENDER_SCALE,
    XServer,
    backdrop_image,
    framed,
    grey,
    run_leocad,
)
from tpru.sources.text import join_words, with_article

INSTALL_HINT = ("needs LeoCAD, Xvfb and the LDraw parts library{missing}: run "
                "scripts/setup-system.sh lego (Debian packages leocad, xvfb, ldraw-parts "
                "from the non-free component)")
LIBRARY_PATHS = ("/usr/share/ldraw", "/usr/share/LDRAW", "/usr/local/share/ldraw")
"""Where the LDraw library is looked for when ``LDRAWDIR`` is not set."""

SAMPLES = {"example_car": "car.ldr", "example_pyramid": "pyramid.ldr"}
"""Tasks that build an example model of the library (``models/<file>``), when present."""

LATITUDES = {"example_pyramid": (50, 65), "mosaic": (45, 60)}
"""Camera height in degrees (default 20 to 40): flat and stepped models are seen from higher
up, so the small top layers of a pyramid still change much of the frame."""
LONGITUDES = {"wall": (15, 35)}
"""Camera angle from the front in degrees, either side (default 25 to 65): a thin wall is
seen nearly face on."""
MAX_PART_GROUPS = 5
"""A step text names at most this many kinds of part, then counts the rest."""


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
        self._server = XServer()
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
        renders = framed(self.render_steps(ldr, (round(size[0] * scale),
                                                 round(size[1] * scale)), camera), size)
        background = backdrop_image(rng, BACKDROPS[backdrop], size)
        names = []
        for i, index in enumerate(shown):
            frame = background.copy()
            frame.alpha_composite(renders[index])
            names.append(frame_name(i, "jpg"))
            save_frame(frame.convert("RGB"), frames_dir / names[-1])
        meta.update({"task": task, "engine": "leocad", "camera_angles": list(camera),
                     "backdrop": backdrop, "look": backdrop, "steps_in_model": len(renders)})
        return EpisodeSpec(description=description,
                           steps=tuple(t[:1].upper() + t[1:] + "." for t in texts),
                           frames=tuple(names),
                           meta=meta)

    def render_steps(self, ldr: str, size: tuple[int, int],
                     camera: tuple[int, int]) -> list[Image.Image]:
        """One RGBA image per ``0 STEP`` of the LDraw text `ldr`, from one LeoCAD call."""
        if self._home is None:
            self._home = tempfile.TemporaryDirectory(prefix="tpru-leocad-")
        return run_leocad(ldr, size, camera, library=self.library, home=Path(self._home.name),
                          display=self._server.ensure())

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
        original = read_steps(path.read_text(encoding="utf-8", errors="replace"))
        steps = regroup(original, frames, self._part_weight)
        if steps is None:
            raise SimError(f"{path} has too few parts for {frames} building steps")
        if task == "example_car":
            body, seat = colour_run(rng, 2, palette=[c for c in BRIGHT if c != "black"])
            recolour = {4: COLOURS[body], 1: COLOURS[seat]}
            description = (f"building the LDraw example car with {with_article(body)} body and "
                           f"{with_article(seat)} seat, from the black chassis to the roof and the "
                           "wheels")
            meta: dict[str, Any] = {"body": body, "seat": seat}
        else:
            a, b, c, d = colour_run(rng, 4)
            recolour = {1: COLOURS[a], 4: COLOURS[b], 14: COLOURS[c], 0: COLOURS[d]}
            description = (f"building the LDraw example pyramid: {with_article(a)} ring of 2x4 "
                           f"bricks, {with_article(b)} ring on it, two {c} 2x4 bricks and "
                           f"{with_article(d)} 2x2 brick on top")
            meta = {"layers": [a, b, c, d]}
        steps = [[recoloured(line, recolour) for line in step] for step in steps]
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
                words.append(f"{with_article(colour)} {part}")
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
        """A seeded one of the shared `BACKDROPS` that differs by `MIN_CONTRAST` grey levels
        from every colour of the model, or the one that differs most when none does."""
        values = self._colours()[1]
        codes = {int(f[1]) for f in (line.split() for line in ldr.splitlines())
                 if len(f) >= 15 and f[0] == "1"}
        greys = [grey(values[c]) for c in sorted(codes) if c in values]

        def contrast(name: str) -> float:
            return min((abs(grey(BACKDROPS[name]) - g) for g in greys), default=255.0)

        names = sorted(BACKDROPS)
        good = [name for name in names if contrast(name) >= MIN_CONTRAST]
        return str(good[int(rng.integers(len(good)))]) if good else max(names, key=contrast)

    def _part_name(self, file: str) -> str:
        if file not in self._part_names:
            path = self.library / "parts" / file.lower().replace("\\", "/")
            first = path.read_text(errors="replace").split("\n", 1)[0] if path.is_file() else ""
            self._part_names[file] = part_title(first) or file.rsplit(".", 1)[0]
        return self._part_names[file]
