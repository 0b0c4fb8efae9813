"""The Ray engine's pass-1 rate against the local engine's, on the same frames and cores.

    .venv/bin/python bench/engine_speed.py                 # 10,000 frames, 1 and 2 CPUs
    .venv/bin/python bench/engine_speed.py --frames 2000 --cpus 1

What it does, top to bottom:

1. Generates (or reuses) ``--frames`` 640x480 JPEG frames in the ``frames:``
   layout (``frame_set.py``, the set ``build_speed.py`` uses).
2. For each CPU count C, in one run: ``tpru build --source frames:ROOT --workers C``
   with ``--engine local`` and with ``--engine ray`` (a Ray started by the build
   on this machine with C CPUs), each a subprocess, each output checked
   byte-identical to the first local build (build.json but its engine block).
3. Times pass 1 (reading, decoding, filtering, hashing, embedding, staging: the
   part the engine runs) from the moment ``work/episodes.jsonl`` appears (the
   engine is up) to its last write, by polling every 20 ms, and the whole
   build's wall clock, which for Ray includes starting Ray.
4. A table on the terminal, and the results appended to ``bench/RESULTS.md``.

The targets, ratios from this one run: Ray's pass-1 images/s at least 0.85 of
the local engine's at each C, and Ray's rate at 2 CPUs at least 1.7 times its
rate at 1 CPU. On a 2-core machine the 2-CPU runs share their cores with the
driver and whatever else runs, so that scaling is bounded by the machine; the
local engine's scaling is printed beside it for comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench_common import BENCH_DIR, code_version, cpu_snapshot, machine, other_cores, wait_for_quiet
from frame_set import ensure_frames


@dataclass
class Run:
    engine: str
    cpus: int
    frames: int
    pass1_s: float
    wall_s: float
    other_cores: float

    @property
    def rate(self) -> float:
        return self.frames / self.pass1_s


def run_build(root: Path, out: Path, engine: str, cpus: int) -> Run:
    shutil.rmtree(out, ignore_errors=True)
    records = out.with_name(out.name + ".partial") / "work" / "episodes.jsonl"
    command = [sys.executable, "-m", "tpru.cli", "build", "-q", "--source", f"frames:{root}",
               "--out", str(out), "--workers", str(cpus), "--engine", engine]
    before = cpu_snapshot()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    appeared = last_write = None
    size = -1
    while process.poll() is None:
        if records.exists():
            now = time.perf_counter()
            appeared = appeared or now
            current = records.stat().st_size
            if current != size:
                size, last_write = current, now
        time.sleep(0.02)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        assert process.stderr is not None
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    info = json.loads((out / "build.json").read_text())
    if appeared is None or last_write is None:
        raise SystemExit("the build finished before its work folder could be seen")
    return Run(engine, cpus, info["counts"]["frames_read"], last_write - appeared, wall,
               other_cores(before, wall))


def same_output(a: Path, b: Path) -> bool:
    """Whether two builds wrote the same files (build.json but its engine block); names
    the files that differ."""
    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}
    fa, fb = files(a), files(b)
    ja, jb = (json.loads(f.pop("build.json")) for f in (fa, fb))
    ja.pop("engine", None)
    jb.pop("engine", None)
    differ = sorted(name for name in fa.keys() | fb.keys() if fa.get(name) != fb.get(name))
    differ += [f"build.json: {key}" for key in sorted(ja.keys() | jb.keys())
               if ja.get(key) != jb.get(key)]
    if differ:
        print(f"  {b.name} differs from {a.name}: {', '.join(differ[:8])}")
    return not differ


def report(args: argparse.Namespace, runs: dict[tuple[str, int], Run], identical: bool) -> str:
    lines = [f"## Build engines, local and Ray: pass-1 images/s "
             f"({datetime.now(timezone.utc).strftime('%Y-%m-%d')})", "",
             f"- machine: {machine(f'ray {_ray_version()}')}",
             f"- command: `python bench/engine_speed.py --frames {args.frames} --cpus "
             f"{' '.join(map(str, args.cpus))}`",
             f"- code: {code_version()}",
             f"- frames: {args.frames} generated 640x480 JPEG (bench/frame_set.py); "
             f"outputs byte-identical across engines: {'yes' if identical else 'NO'}",
             "- pass 1: from work/episodes.jsonl appearing (engine up) to its last write; "
             "wall: the whole build, Ray's start included", "",
             "| engine | CPUs | frames | pass 1 s | images/s | build wall s | other load |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for run in runs.values():
        lines.append(f"| {run.engine} | {run.cpus} | {run.frames} | {run.pass1_s:.1f} | "
                     f"{run.rate:.0f} | {run.wall_s:.1f} | {run.other_cores:.2f} cores |")
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    for cpus in args.cpus:
        ratio = runs["ray", cpus].rate / runs["local", cpus].rate
        lines.append(f"| ray / local >= 0.85 at {cpus} CPU{'s' if cpus > 1 else ''} | "
                     f"{runs['ray', cpus].rate:.0f} / {runs['local', cpus].rate:.0f} = "
                     f"{ratio:.2f} | {'met' if ratio >= 0.85 else 'NOT met'} |")
    if 1 in args.cpus and 2 in args.cpus:
        ray_scaling = runs["ray", 2].rate / runs["ray", 1].rate
        local_scaling = runs["local", 2].rate / runs["local", 1].rate
        lines.append(f"| ray scaling 1 -> 2 CPUs >= 1.7 | {ray_scaling:.2f} (local engine: "
                     f"{local_scaling:.2f}) | {'met' if ray_scaling >= 1.7 else 'NOT met'} |")
    return "\n".join(lines) + "\n"


def _ray_version() -> str:
    import ray

    return str(ray.__version__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10000, help="frames to generate")
    parser.add_argument("--cpus", type=int, nargs="+", default=[1, 2],
                        help="CPU counts to compare at (--workers of both engines)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out",
                        help="where the frames and the builds go")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated frames")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "RESULTS.md",
                        help="the file the results are appended to")
    parser.add_argument("--quiet-wait", type=float, default=120, metavar="SECONDS",
                        help="wait up to this long for other processes to go quiet before "
                             "each build (0: do not wait)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = args.out / f"frames-{args.frames}"
    ensure_frames(root, args.frames, args.seed)
    runs: dict[tuple[str, int], Run] = {}
    identical = True
    reference: Path | None = None  # the first build; the others are compared with it
    for cpus in args.cpus:
        for engine in ("local", "ray"):
            wait_for_quiet(args.quiet_wait)
            out = args.out / f"engine-{engine}-{cpus}"
            run = runs[engine, cpus] = run_build(root, out, engine, cpus)
            print(f"{engine} x{cpus}: {run.rate:.0f} images/s in pass 1 "
                  f"({run.pass1_s:.1f} s; build {run.wall_s:.1f} s)")
            if reference is None:
                reference = out
            else:
                identical = identical and same_output(reference, out)
                shutil.rmtree(out)
    text = report(args, runs, identical)
    print(text)
    with args.results.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
