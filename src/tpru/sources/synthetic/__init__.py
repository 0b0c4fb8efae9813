"""tpru's own sample episodes: small procedural scenes with visible progress.

`write_synthetic_episodes` draws episodes for four scenarios, each with three
kinds of task taking turns, and writes them as frame folders that `FrameFolderSource`
reads (``root/<scenario>/ep000/000.jpg ... episode.json``):

- ``robot`` (side view): a gripper stacks blocks on a base block, puts them
  into a tray, or takes a tower apart into a row;
- ``lego`` (side view): bricks added one step at a time to a tower, a wall or
  a pyramid on a baseplate;
- ``gui``: an app window where a form is filled in and submitted, a to-do list
  grows, or settings switches are turned on;
- ``nav``: walking down a corridor towards a coloured door (first person),
  crossing a maze to a goal, or collecting items in a room (top down).

Every episode shows monotonic progress (no two frames alike, the last far
from the first), has a description precise enough to tell it from the other
episodes (colours, counts, names, targets; duplicates within a scenario are
redrawn) and one step text per frame. Descriptions are gerund phrases in
lower case without a final full stop ("stacking the red, blue and green
blocks, ..."), since the builder puts them after "These photos show the
process of". A fixed per-episode noise texture keeps the frames sharp for blur
checks without making unchanged pixels differ. Up to `MAX_FRAMES` frames per
episode, every step changes the picture enough to pass the builder's
near-duplicate check: the gripper's path is sampled at equal distances, a hand
holds the next brick, the corridor has pillars to walk past, and a top-down
trail grows by at least three squares a frame.

The look around the process (the robot's room and table, the lego backdrop
and baseplate, the app's accent colour, the nav building's walls and floor)
comes from a small pool per scenario (``LOOKS`` or ``THEMES`` of each
module), recorded as ``meta.look``: frames of other episodes of a scenario,
which the builder offers as candidates, then share the look of the truth's
episode often enough that colour alone does not rule them out, and only the
content (blocks, bricks, app content, route) tells them apart.

Everything is drawn from ``numpy.random.default_rng([seed, scenario, episode])``,
so the same seed writes byte-identical files, and adding episodes or
scenarios does not change the others.

One module per scenario (`robot`, `lego`, `gui`, `nav`) turns a generator into
a `Plan` (texts and a frame renderer); `draw` holds what they share and
`writer` the table of scenarios and the files.
"""

from __future__ import annotations

from tpru.sources.synthetic.draw import COLOURS, DARK, NAMES, RGB, VIVID
from tpru.sources.synthetic.writer import (
    EPISODE_TASKS_BY_SCENARIO,
    MAX_FRAMES,
    MIN_FRAMES,
    SCENARIOS,
    write_synthetic_episodes,
)

__all__ = [
    "COLOURS",
    "DARK",
    "EPISODE_TASKS_BY_SCENARIO",
    "MAX_FRAMES",
    "MIN_FRAMES",
    "NAMES",
    "RGB",
    "SCENARIOS",
    "VIVID",
    "write_synthetic_episodes",
]
