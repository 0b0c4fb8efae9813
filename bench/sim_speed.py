"""How fast each built-in simulator renders episodes, on one core.

    .venv/bin/python bench/sim_speed.py                          # robot and nav, 2 rounds of tasks
    .venv/bin/python bench/sim_speed.py --simulators robot --rounds 4 --frames 8
    .venv/bin/python bench/sim_speed.py --simulators gui,lego --size 640x480

What it does, top to bottom:

1. Pins this process (and the threads the engines start, e.g. Mesa's llvmpipe)
   to one core with ``sched_setaffinity``, so the numbers are per core and
   comparable across machines with a different number of cores.
2. For each simulator: renders one episode untimed first (engine start-up:
   PyBullet loading meshes, MiniWorld opening its OpenGL context and loading
   textures, a browser starting) and reports that cold start separately; then
   renders ``--rounds`` episodes of every task (seeds 1, 2, ...; tasks in turn,
   as ``sim:NAME`` does) into a temporary folder, timing each with the wall
   clock and with the process's CPU time.
3. Prints a table: the cold start, episodes that rendered and failed, frames
   written, seconds per episode, frames per wall second and frames per CPU
   second. Simulators
   render about twice the frames asked for as candidates and keep the most
   distinct (`tpru.sources.sim.common.pick_distinct`): "frames" counts only
   those written.

Other processes on the same core lower the wall-clock rate; the CPU-time rate
barely moves with them. Nothing is written outside the temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tpru.diagnostics import InputError
from tpru.sources.sim import SIMULATORS, load_simulator
from tpru.sources.sim.common import SimError, Simulator


@dataclass
class Result:
    name: str
    cold_s: float = 0.0
    episodes: int = 0
    failed: int = 0
    frames: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    note: str = ""


def run(name: str, *, rounds: int, frames: int, size: tuple[int, int], root: Path) -> Result:
    result = Result(name)
    try:
        simulator: Simulator = load_simulator(name)
    except InputError as err:
        result.note = str(err)
        return result
    start = time.perf_counter()
    try:
        simulator.render_episode(simulator.tasks[0], 0, _fresh(root / name / "cold"),
                                 frames=frames, size=size)
    except SimError:
        pass                    # a bad seed still started the engine
    except Exception as err:    # a missing program or library: report it, go on
        result.note = f"{type(err).__name__}: {err}"
        return result
    result.cold_s = time.perf_counter() - start
    for seed in range(1, 1 + rounds * len(simulator.tasks)):
        task = simulator.tasks[seed % len(simulator.tasks)]
        folder = _fresh(root / name / f"{seed:06d}")
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            spec = simulator.render_episode(task, seed, folder, frames=frames, size=size)
        except SimError:
            result.failed += 1
        else:
            result.episodes += 1
            result.frames += len(spec.frames)
        result.wall_s += time.perf_counter() - wall
        result.cpu_s += time.process_time() - cpu
    return result


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulators", default="robot,nav",
                        help=f"comma-separated, of: {', '.join(SIMULATORS)}")
    parser.add_argument("--rounds", type=int, default=2, help="episodes per task")
    parser.add_argument("--frames", type=int, default=6, help="frames per episode")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    parser.add_argument("--core", type=int, default=None,
                        help="the core to run on (default: the first this process may use)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    core = args.core if args.core is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    console = Console(width=max(100, Console().width))
    results = []
    with tempfile.TemporaryDirectory(prefix="tpru-sim-speed-") as tmp:
        for name in args.simulators.split(","):
            console.log(f"{name}: rendering {args.rounds} episode(s) per task ...")
            results.append(run(name.strip(), rounds=args.rounds, frames=args.frames,
                               size=(width, height), root=Path(tmp)))
    table = Table(title=f"Simulators on core {core}: {args.frames} frames of {width}x{height} "
                        f"per episode (python {sys.version.split()[0]})")
    for column in ("simulator", "cold s", "episodes", "failed", "frames", "s/episode",
                   "frames/s", "frames/CPU s"):
        table.add_column(column, justify="left" if column == "simulator" else "right",
                         no_wrap=True)
    for r in results:
        if r.note:
            table.add_row(r.name, "-", "-", "-", "-", "-", "-", r.note[:60])
            continue
        tried = max(r.episodes + r.failed, 1)
        table.add_row(r.name, f"{r.cold_s:.2f}", str(r.episodes), str(r.failed), str(r.frames),
                      f"{r.wall_s / tried:.2f}", f"{r.frames / max(r.wall_s, 1e-9):.1f}",
                      f"{r.frames / max(r.cpu_s, 1e-9):.1f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
