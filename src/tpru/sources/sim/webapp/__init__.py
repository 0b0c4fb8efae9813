"""The small web app that ``sim:gui`` drives in Chromium, and what is scripted on it.

- ``static/``: plain HTML, CSS and JavaScript, no external resources: a home
  screen with five apps (to-do list, settings, shop with cart and checkout,
  contact form, notes editor). Their content (names, products, and a theme
  colour from a pool of three that all episodes share) comes from
  ``window.APP_CONFIG``, which the simulator injects before any page script
  runs; their state lives in ``localStorage``.
- `server`: serves ``static/`` on 127.0.0.1 from a background thread.
- `tasks`: one planner per task type, turning a seeded generator into the
  app's content, the actions to perform and their texts.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).with_name("static")
"""The app's files."""

__all__ = ["STATIC"]
