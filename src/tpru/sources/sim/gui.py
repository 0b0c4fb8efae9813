"""``sim:gui``: scripted tasks on a small web app, screenshotted by headless Chromium.

The project serves its own multi-page app (`tpru.sources.sim.webapp`: a home
screen, a to-do list, settings switches, a shop with cart and checkout, a
contact form, a notes editor) on 127.0.0.1, and Playwright drives Debian's
Chromium through one scripted task per episode: the home screen first, then
one screenshot after each action (a click, typing, a page change). The
content (names, products) and the actions come from the seed
(`tpru.sources.sim.webapp.tasks`); the theme colour is one of the few that
all episodes share (``THEMES``), so screens of other episodes are plausible
candidates by look.

One browser serves every episode of a simulator; each episode gets a fresh
browser context (empty storage), so episodes never see each other's state.
Screenshots are reproducible: the app names the DejaVu fonts, has no
animations, transitions or hover styles, hides the caret, and every page is
laid out at 640 CSS pixels across (480 high for 4:3; other aspect ratios
widen or heighten it) and scaled to the frame size, so every size shows the
same layout.

Never downloads a browser: it uses ``/usr/bin/chromium`` (``scripts/setup-system.sh
browser``) and the ``playwright`` Python package.
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import os
import threading
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

from PIL import Image
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

from tpru.sources.sim.common import (
    EngineMissing,
    EpisodeSpec,
    SimError,
    check_request,
    episode_rng,
    frame_name,
    save_frame,
)
from tpru.sources.sim.webapp import STATIC
from tpru.sources.sim.webapp.server import StaticServer
from tpru.sources.sim.webapp.tasks import HOME_STEP, MAX_ACTIONS, PLANNERS, Script

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--hide-scrollbars", "--force-color-profile=srgb",
                 "--font-render-hinting=none")
INSTALL_HINT = ("needs Chromium at {path}: run scripts/setup-system.sh browser (Debian package "
                "chromium), or pass the path of another Chromium")
LAYOUT = (640, 480)
"""CSS pixels of a 4:3 page; a frame of any size shows this layout scaled."""
MAX_FRAMES = MAX_ACTIONS + 1
ACTION_TIMEOUT_MS = 15_000


def css_viewport(size: tuple[int, int]) -> tuple[ViewportSize, float]:
    """The CSS viewport and the device scale factor that render `size` pixels.

    The viewport is the smallest one of at least 640x480 CSS pixels with the
    frame's aspect ratio.

    Example:
        >>> css_viewport((320, 240))
        ({'width': 640, 'height': 480}, 0.5)
    """
    w, h = size
    if w * LAYOUT[1] >= h * LAYOUT[0]:
        css = ViewportSize(width=round(LAYOUT[1] * w / h), height=LAYOUT[1])
    else:
        css = ViewportSize(width=LAYOUT[0], height=round(LAYOUT[0] * h / w))
    return css, w / css["width"]


_DRIVERS: dict[int, tuple[Playwright, list[int]]] = {}
"""Thread id -> (Playwright, [users]): Playwright's sync API allows one driver per thread,
so the simulators of a thread share it and each starts its own browser on it."""


def _acquire_driver() -> Playwright:
    key = threading.get_ident()
    if key not in _DRIVERS:
        _DRIVERS[key] = (sync_playwright().start(), [0])
    driver, users = _DRIVERS[key]
    users[0] += 1
    return driver


def _release_driver() -> None:
    key = threading.get_ident()
    if key in _DRIVERS:
        driver, users = _DRIVERS[key]
        users[0] -= 1
        if users[0] == 0:
            del _DRIVERS[key]
            driver.stop()


class _Engine:
    """The web server and a browser, started together and stopped together."""

    def __init__(self, chromium: str) -> None:
        self.thread = threading.get_ident()
        self.server = StaticServer(STATIC)
        self.browser: Browser | None = None
        try:
            driver = _acquire_driver()
        except Exception:
            self.server.close()
            raise
        try:
            self.browser = driver.chromium.launch(executable_path=chromium,
                                                  args=list(CHROMIUM_ARGS), headless=True)
        except Exception:
            self.stop()
            raise
        log.debug("Chromium %s started", self.browser.version)

    def stop(self) -> None:
        try:
            if threading.get_ident() != self.thread:
                # Playwright objects work only in their own thread; the browser goes
                # when the driver does, at the latest when this process exits.
                log.debug("browser left running: stopped from another thread")
                return
            if self.browser is not None:
                self.browser.close()
                self.browser = None
            _release_driver()
        finally:
            self.server.close()


_ORPHANS: list[_Engine] = []
"""Browsers of simulators that were garbage-collected without `GuiSim.close`."""


def _orphan(holder: dict[str, _Engine]) -> None:
    """Finalizer of a `GuiSim`: hand its browser over to be stopped at a safe point.

    The garbage collector can run a finalizer in the middle of any Playwright call,
    where calling Playwright again would hang; so the browser is stopped later, by the
    next episode rendered in its thread or at exit (`_stop_orphans`).
    """
    engine = holder.pop("engine", None)
    if engine is not None:
        _ORPHANS.append(engine)


def _stop_orphans() -> None:
    """Stop the orphaned browsers of this thread."""
    mine = [e for e in _ORPHANS if e.thread == threading.get_ident()]
    for engine in mine:
        _ORPHANS.remove(engine)
        engine.stop()


atexit.register(_stop_orphans)


class GuiSim:
    """Web-app episodes screenshotted by Chromium; one browser serves all episodes.

    The browser starts on the first `render_episode` and stops on `close`
    (also when leaving a ``with`` block, or at exit).

    Args:
        chromium: the Chromium executable (Debian's by default; never downloaded).

    Raises:
        EngineMissing: no Chromium at that path.

    Example:
        >>> with GuiSim() as sim:                                        # doctest: +SKIP
        ...     spec = sim.render_episode("todo", 0, Path("ep"), frames=4, size=(320, 240))
        >>> spec.steps[0]                                                # doctest: +SKIP
        'the home screen with the to-do, settings, shop, contact and notes apps'
    """

    name = "gui"
    tasks: tuple[str, ...] = tuple(PLANNERS)

    def __init__(self, *, chromium: str | os.PathLike[str] = CHROMIUM) -> None:
        path = Path(chromium)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise EngineMissing(INSTALL_HINT.format(path=path))
        self.chromium = str(path)
        self._holder: dict[str, _Engine] = {}
        self._finalizer = weakref.finalize(self, _orphan, self._holder)

    def render_episode(self, task: str, seed: int, frames_dir: Path, *, frames: int,
                       size: tuple[int, int]) -> EpisodeSpec:
        """Run one scripted `task` drawn from `seed`; write the home screen and one frame
        per action into `frames_dir`."""
        check_request(self, task, frames, size)
        if frames > MAX_FRAMES:
            raise ValueError(f"sim:gui episodes have at most {MAX_FRAMES} frames, got {frames}")
        script = PLANNERS[task](episode_rng(self.name, task, seed), frames - 1)
        engine = self._engine()
        assert engine.browser is not None
        viewport, scale = css_viewport(size)
        context = engine.browser.new_context(
            viewport=viewport, device_scale_factor=scale, locale="en-GB", timezone_id="UTC",
            color_scheme="light", reduced_motion="reduce", service_workers="block")
        try:
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            context.add_init_script(f"window.APP_CONFIG = {json.dumps(script.config)};")
            page = context.new_page()
            page.goto(f"{engine.server.url}/index.html")
            names = [self._shot(page, frames_dir, 0, size)]
            for i, action in enumerate(script.actions, start=1):
                for op in action.ops:
                    _run(page, op)
                names.append(self._shot(page, frames_dir, i, size))
        finally:
            context.close()
        steps = [HOME_STEP, *(action.step for action in script.actions)]
        return EpisodeSpec(description=script.description, steps=tuple(map(_sentence, steps)),
                           frames=tuple(names), meta=_meta(task, script, engine, viewport))

    def close(self) -> None:
        """Stop the browser and the web server; a later episode starts them again."""
        engine = self._holder.pop("engine", None)
        if engine is not None:
            engine.stop()

    def __enter__(self) -> GuiSim:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _engine(self) -> _Engine:
        _stop_orphans()
        if "engine" not in self._holder:
            self._holder["engine"] = _Engine(self.chromium)
        return self._holder["engine"]

    @staticmethod
    def _shot(page: Page, frames_dir: Path, index: int, size: tuple[int, int]) -> str:
        """Wait until the page has settled, then save a screenshot as frame `index`."""
        page.wait_for_load_state("load")
        page.evaluate("document.fonts.ready.then(() => true)")
        data = page.screenshot(type="png", animations="disabled", caret="hide")
        with Image.open(io.BytesIO(data)) as image:
            frame = image.convert("RGB")
        if frame.size != size:      # the scale factor can round a pixel off
            frame = frame.resize(size, Image.Resampling.LANCZOS)
        name = frame_name(index, "png")
        save_frame(frame, frames_dir / name)
        return name


def _run(page: Page, op: tuple[str, ...]) -> None:
    """One scripted operation: click, fill or press, on the element a CSS selector names."""
    kind, selector, *args = op
    try:
        if kind == "click":
            page.click(selector)
        elif kind == "fill":
            page.fill(selector, args[0])
        elif kind == "press":
            page.press(selector, args[0])
        else:
            raise ValueError(f"unknown operation {kind!r}")
    except Exception as err:  # Playwright's errors vary; say which step of the script failed
        raise SimError(f"{kind} {selector!r} failed on {page.url}: {err}") from err


def _sentence(text: str) -> str:
    """``"Adding 'bake bread' to the list."`` from ``"adding 'bake bread' to the list"``."""
    return text[:1].upper() + text[1:] + "."


def _meta(task: str, script: Script, engine: _Engine, viewport: ViewportSize) -> dict[str, Any]:
    version = engine.browser.version if engine.browser is not None else "?"
    return {"task": task, "engine": f"chromium {version}",
            "theme": script.config["theme"], "look": script.config["theme"],
            "user": script.config["user"],
            "viewport": [viewport["width"], viewport["height"]], **script.meta}
