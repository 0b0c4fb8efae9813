"""Speed and memory of `tpru build`, measured side by side with a decode-only pass.

    .venv/bin/python bench/build_speed.py                  # 20,000 frames, workers 1 and 2
    .venv/bin/python bench/build_speed.py --frames 2000 --workers 1

What it does, top to bottom:

1. Generates ``--frames`` 640x480 JPEG frames (quality 90) as episodes of
   10-20 frames in the ``frames:`` layout (``ROOT/<scenario>/<episode>/000.jpg``
   plus ``episode.json``): smooth multi-scale noise backgrounds with film grain
   and a slow camera pan, and a few shapes that move every step, so frames pass
   the blur, near-duplicate and static filters. Generation runs on every core
   and is cached: a marker file in ROOT says what is there.
2. Decode-only passes over the same files: read the bytes and fully decode
   them with PIL, in one process and in a pool of W processes for each W.
3. ``tpru build --source frames:ROOT --out OUT --workers W -q`` as a
   subprocess for each W, timing the wall clock and polling the peak RSS of the
   whole process tree (the build and its workers, summed) every 50 ms.
4. The W=1 build again on a quarter of the episodes (a folder of symlinks), to
   show whether peak memory grows with the dataset.
5. A table on the terminal, and the results appended to ``bench/RESULTS.md``.

The targets, all ratios from this one run (never timed assertions in tests):
the build runs at >= 50% of the decode-only rate per core (build rate with W
workers / decode rate with W processes), a build with more workers is faster
(scaling > 1), and peak RSS stays under 2 GB.

Bench dependency: ``psutil`` (``.venv/bin/pip install psutil``) for the
process-tree RSS. Without it the script falls back to ``ru_maxrss`` of the
largest single child process, which undercounts a build with workers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

try:
    import psutil
except ImportError:  # the fallback is described in the module docstring
    psutil = None

WIDTH, HEIGHT = 640, 480
QUALITY = 90
GENERATOR_VERSION = 1
"""Bump when the generated frames change, so cached sets are regenerated."""
MARKER = ".bench-frames.json"
SCENARIOS = ("kitchen", "assembly", "garden", "workshop", "desk", "warehouse", "lab", "street")
VERBS = ("slides to the left", "moves towards the camera", "is pushed across the table",
         "drifts to the right", "is lifted and set down", "rolls past the others")
RSS_TARGET = 2 * 1024 ** 3
RATIO_TARGET = 0.5
POLL_S = 0.05
BENCH_DIR = Path(__file__).resolve().parent


# ---------------------------------------------------------------- 1. frames


def episode_plan(frames: int, seed: int) -> list[tuple[str, str, int]]:
    """(scenario, episode name, frame count) for episodes of 10-20 frames totalling `frames`."""
    rng = np.random.default_rng(seed)
    plan: list[tuple[str, str, int]] = []
    total = 0
    while total < frames:
        n = min(int(rng.integers(10, 21)), frames - total)
        if n < 6 and plan:  # fold a short tail into the episode before
            scenario, name, last = plan[-1]
            plan[-1] = (scenario, name, last + n)
        else:
            i = len(plan)
            plan.append((SCENARIOS[i % len(SCENARIOS)], f"ep{i // len(SCENARIOS):05d}", n))
        total += n
    return plan


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Multi-scale value noise (float32 HxWx3, about 0-255): a plausible photo background."""
    w, h = size
    out = np.zeros((h, w, 3), np.float32)
    for cells, amplitude in ((4, 90.0), (12, 40.0), (40, 20.0), (120, 12.0), (320, 10.0)):
        small = rng.random((max(2, cells * h // w), cells, 3)).astype(np.float32)
        grid = Image.fromarray((small * 255).astype(np.uint8))
        out += np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), np.float32) \
            * (amplitude / 255.0)
    gradient = np.linspace(-30, 30, h, dtype=np.float32)[:, None, None]
    base = rng.uniform(40, 140, size=3).astype(np.float32)
    return out + gradient + base - out.mean()


def _bounce(position: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Fold a straight path back into [0, bounds], as if the shape bounced off the edges."""
    folded = np.mod(position, 2 * bounds)
    return np.where(folded > bounds, 2 * bounds - folded, folded)


def write_episode(args: tuple[Path, int, str, str, int, int]) -> int:
    """Render one episode's frames and its episode.json; returns the frame count."""
    root, index, scenario, name, count, seed = args
    rng = np.random.default_rng([seed, index])
    folder = root / scenario / name
    folder.mkdir(parents=True, exist_ok=True)
    pad = 100
    canvas = _smooth_noise(rng, (WIDTH + 2 * pad, HEIGHT + 2 * pad))
    grain = [rng.normal(0, 3.0, (HEIGHT, WIDTH, 3)).astype(np.float32) for _ in range(3)]
    pan = rng.uniform(2, 5, size=2) * rng.choice([-1, 1], size=2)
    shapes = []
    for _ in range(int(rng.integers(3, 7))):
        shapes.append({
            "kind": rng.choice(["ellipse", "rectangle", "polygon"]),
            "pos": rng.uniform([60, 60], [WIDTH - 60, HEIGHT - 60]),
            "vel": rng.uniform(12, 30, size=2) * rng.choice([-1, 1], size=2),
            "size": rng.uniform(60, 170, size=2),
            "fill": tuple(int(c) for c in rng.integers(20, 236, size=3)),
            "edge": tuple(int(c) for c in rng.integers(0, 256, size=3)),
        })
    for step in range(count):
        ox, oy = (np.clip(pad + pan * step, 0, 2 * pad)).astype(int)
        pixels = canvas[oy:oy + HEIGHT, ox:ox + WIDTH] + grain[step % 3]
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for s in shapes:
            x, y = _bounce(s["pos"] + s["vel"] * step, np.array([WIDTH, HEIGHT]))
            w, h = s["size"]
            box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
            if s["kind"] == "ellipse":
                draw.ellipse(box, fill=s["fill"], outline=s["edge"], width=3)
            elif s["kind"] == "rectangle":
                draw.rectangle(box, fill=s["fill"], outline=s["edge"], width=3)
            else:
                draw.polygon([(x, y - h / 2), (x + w / 2, y + h / 2), (x - w / 2, y + h / 2)],
                             fill=s["fill"], outline=s["edge"])
        image.save(folder / f"{step:03d}.jpg", "JPEG", quality=QUALITY)
    info = {"id": f"{scenario}/{name}", "scenario": scenario,
            "description": f"In the {scenario}, the {shapes[0]['kind']} "
                           f"{VERBS[int(rng.integers(len(VERBS)))]}."}
    (folder / "episode.json").write_text(json.dumps(info))
    return count


def ensure_frames(root: Path, frames: int, seed: int) -> list[tuple[str, str, int]]:
    """Generate the frame set in `root` unless the marker says it is already there."""
    plan = episode_plan(frames, seed)
    wanted = {"frames": frames, "seed": seed, "generator": GENERATOR_VERSION,
              "size": [WIDTH, HEIGHT], "quality": QUALITY}
    marker = root / MARKER
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"frames: reusing {frames} frames in {root}")
        return plan
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    start = time.perf_counter()
    with mp.Pool(os.cpu_count()) as pool:
        jobs = [(root, i, s, n, c, seed) for i, (s, n, c) in enumerate(plan)]
        made = sum(pool.imap_unordered(write_episode, jobs, chunksize=4))
    marker.write_text(json.dumps(wanted))
    print(f"frames: generated {made} frames in {len(plan)} episodes "
          f"in {time.perf_counter() - start:.0f} s")
    return plan


def quarter_root(root: Path, plan: list[tuple[str, str, int]], target: int) -> tuple[Path, int]:
    """A folder of symlinks to the first episodes, about `target` frames in every scenario."""
    quarter = root.with_name(root.name + "-quarter")
    if quarter.exists():
        shutil.rmtree(quarter)
    total = 0
    for scenario, name, count in plan:  # the plan interleaves scenarios, so this keeps them all
        if total >= target:
            break
        (quarter / scenario).mkdir(parents=True, exist_ok=True)
        (quarter / scenario / name).symlink_to(root / scenario / name)
        total += count
    return quarter, total


def frame_paths(root: Path, plan: list[tuple[str, str, int]]) -> list[str]:
    return [str(root / s / n / f"{i:03d}.jpg") for s, n, c in plan for i in range(c)]


# ---------------------------------------------------------------- 2. decode only


def decode_file(path: str) -> int:
    """Read and fully decode one file, as the builder must at least do."""
    with Image.open(io.BytesIO(Path(path).read_bytes())) as image:
        image.load()
    return 1


def decode_chunk(paths: list[str]) -> int:
    return sum(decode_file(p) for p in paths)


@dataclass
class Run:
    """One timed pass: what ran, on how many frames, how long, with how much memory."""

    name: str
    frames: int
    wall_s: float
    cpu_s: float
    peak_rss: int | None = None
    rss_kind: str = ""
    other_cores: float = 0.0
    """Cores that processes outside this benchmark kept busy meanwhile: the noise."""
    extra: dict[str, float] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.frames / self.wall_s

    @property
    def cpu_rate(self) -> float:
        """Images per CPU second: per-core speed, barely moved by other load."""
        return self.frames / self.cpu_s


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_snapshot() -> tuple[float, float]:
    """(CPU seconds the whole machine was busy, CPU seconds of this process and its children)."""
    busy = 0.0
    with contextlib.suppress(OSError, ValueError):
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    return busy, sum(os.times()[:4])


def _other_cores(before: tuple[float, float], wall_s: float) -> float:
    busy, ours = _cpu_snapshot()
    return max(0.0, (busy - before[0]) - (ours - before[1])) / wall_s


def wait_for_quiet(limit_s: float, threshold: float = 0.15) -> None:
    """Wait (at most `limit_s`) until other processes use under `threshold` cores for 2 s."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = _cpu_snapshot()
        time.sleep(2.0)
        load = _other_cores(before, 2.0)
        if load < threshold:
            return
        print(f"  waiting for a quiet machine: others use {load:.2f} cores")
    print(f"  the machine did not get quiet within {limit_s:.0f} s; measuring anyway")


def decode_pass(paths: list[str], processes: int) -> Run:
    """Decode every file, in this process (1) or a pool of `processes`."""
    machine0 = _cpu_snapshot()
    if processes == 1:
        cpu0, start = time.process_time(), time.perf_counter()
        count = sum(decode_file(p) for p in paths)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    else:
        chunks = [paths[i:i + 64] for i in range(0, len(paths), 64)]
        cpu0, start = _children_cpu(), time.perf_counter()
        with mp.Pool(processes) as pool:
            count = sum(pool.imap_unordered(decode_chunk, chunks))
        wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    return Run(f"decode x{processes}", count, wall, cpu,
               other_cores=_other_cores(machine0, wall))


# ---------------------------------------------------------------- 3. the build


def tpru_command() -> list[str]:
    script = Path(sys.executable).with_name("tpru")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from tpru.cli import main; sys.exit(main())"]


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # exited between listing and reading
            total += p.memory_info().rss
    return total


def build_pass(name: str, root: Path, out: Path, workers: int, frames: int) -> Run:
    """Run `tpru build` as a subprocess; wall clock, CPU, peak tree RSS, measure-pass end."""
    if out.exists():
        shutil.rmtree(out)
    shutil.rmtree(out.with_name(out.name + ".partial"), ignore_errors=True)
    command = [*tpru_command(), "build", "--source", f"frames:{root}", "--out", str(out),
               "--workers", str(workers), "-q"]
    records = out.with_name(out.name + ".partial") / "work" / "episodes.jsonl"
    machine0 = _cpu_snapshot()
    cpu0, start_wall, start = _children_cpu(), time.time(), time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watched = psutil.Process(proc.pid) if psutil else None
    peak, measure_end = 0, None
    while proc.poll() is None:
        if watched is not None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, _tree_rss(watched))
        # Records are appended per episode in pass 1 only: their last write ends it.
        with contextlib.suppress(OSError):
            measure_end = records.stat().st_mtime
        time.sleep(POLL_S)
    wall = time.perf_counter() - start
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if proc.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed ({proc.returncode}):\n{output}")
    cpu = _children_cpu() - cpu0
    if watched is None:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    info = json.loads((out / "build.json").read_text())
    run = Run(name, info["counts"]["frames_read"], wall, cpu, peak,
              "tree RSS (psutil)" if watched else "largest child ru_maxrss",
              other_cores=_other_cores(machine0, wall))
    run.extra["frames_kept"] = info["counts"]["frames_kept"]
    run.drops = {f"{k}.{reason}": n for k in ("inputs", "frames", "episodes")
                 for reason, n in info["drops"][k].items()}
    if measure_end is not None:
        run.extra["measure_s"] = measure_end - start_wall
    shutil.rmtree(out)  # a full build stores a copy of every frame
    return run


# ---------------------------------------------------------------- 5. report


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, " \
           f"Pillow {Image.__version__}"


def code_version() -> str:
    """The commit measured, and whether src/ had uncommitted changes (read-only git calls)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=BENCH_DIR, capture_output=True,
                                  text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "../src")
    return head + (" with uncommitted changes in src/" if dirty else "")


def cost_settings() -> str:
    """The default settings that decide the per-frame work, as this checkout has them."""
    from tpru.build.config import BuildConfig

    config = BuildConfig()
    return (f"defaults image.analysis_side={config.image.analysis_side}, "
            f"image.max_side={config.image.max_side}, embed.name={config.embed.name}")


def _mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1024 ** 2:,.0f} MB"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(args: argparse.Namespace, decodes: dict[int, Run], builds: dict[int, Run],
           quarter: Run, command: str) -> str:
    lines = [f"## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "",
             f"- machine: {machine()}",
             f"- command: `{command}`",
             f"- code: {code_version()}; {cost_settings()}",
             f"- frames: {builds[args.workers[0]].frames} generated 640x480 JPEG (quality "
             f"{QUALITY}), {frames_note(builds)}", "",
             "| pass | frames | wall s | images/s | CPU s | images/CPU-s | peak RSS | other load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for run in [*decodes.values(), *builds.values(), quarter]:
        lines.append(f"| {run.name} | {run.frames} | {run.wall_s:.1f} | {run.rate:.0f} | "
                     f"{run.cpu_s:.1f} | {run.cpu_rate:.0f} | "
                     f"{_mb(run.peak_rss) if run.peak_rss else '-'} | "
                     f"{run.other_cores:.2f} cores |")
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    for w, run in builds.items():
        ratio = run.rate / decodes[w].rate
        lines.append(f"| build / decode per core >= {RATIO_TARGET} (W={w}) | "
                     f"{run.rate:.0f} / {decodes[w].rate:.0f} = {ratio:.2f} | "
                     f"{_met(ratio >= RATIO_TARGET)} |")
        cpu_ratio = run.cpu_rate / decodes[w].cpu_rate
        lines.append(f"| the same per CPU second (W={w}) | {run.cpu_rate:.0f} / "
                     f"{decodes[w].cpu_rate:.0f} = {cpu_ratio:.2f} | "
                     f"{_met(cpu_ratio >= RATIO_TARGET)} |")
    ws = sorted(builds)
    if len(ws) > 1:
        lo, hi = builds[ws[0]], builds[ws[-1]]
        scaling = hi.rate / lo.rate
        ideal = decodes[ws[-1]].rate / decodes[ws[0]].rate
        lines.append(f"| scaling > 1 (rate W={ws[-1]} / W={ws[0]}) | {scaling:.2f} "
                     f"(decode-only: {ideal:.2f}) | {_met(scaling > 1)} |")
    peaks = [r for r in [*builds.values(), quarter] if r.peak_rss]
    worst = max(peaks, key=lambda r: r.peak_rss or 0)
    lines.append(f"| peak RSS < 2 GB (every build) | {_mb(worst.peak_rss)} ({worst.name}) | "
                 f"{_met(all((r.peak_rss or 0) < RSS_TARGET for r in peaks))} |")
    full = builds[ws[0]]
    if full.peak_rss and quarter.peak_rss:
        growth = (full.peak_rss - quarter.peak_rss) / max(1, full.frames - quarter.frames)
        lines.append(f"| memory does not grow with size | W={ws[0]}: {_mb(quarter.peak_rss)} at "
                     f"{quarter.frames} frames, {_mb(full.peak_rss)} at {full.frames} "
                     f"({growth / 1024:.1f} KB per extra frame) | see note |")
    lines += ["", "Build breakdown (pass 1 ends at the last write of `work/episodes.jsonl`):", ""]
    for run in [*builds.values(), quarter]:
        measure = run.extra.get("measure_s")
        if measure:
            lines.append(f"- {run.name}: read and measure {measure:.1f} s "
                         f"({run.frames / measure:.0f} images/s), formulate and finish "
                         f"{run.wall_s - measure:.1f} s")
    lines.append(f"- peak RSS is {full.rss_kind}, polled every {POLL_S * 1000:.0f} ms; "
                 "the sum counts pages shared between the forked workers more than once.")
    lines.append("- other load: CPU that processes outside the benchmark used during the pass "
                 "(from /proc/stat); above about 0.1 cores the rates of that pass are unreliable.")
    return "\n".join(lines) + "\n"


def frames_note(builds: dict[int, Run]) -> str:
    run = next(iter(builds.values()))
    drops = ", ".join(f"{k} {v}" for k, v in run.drops.items()) or "none"
    return f"{run.extra['frames_kept']:.0f} kept by the filters (drops: {drops})"


def append_results(text: str, path: Path) -> None:
    if not path.exists():
        path.write_text(
            "# Benchmark results\n\n"
            "`bench/build_speed.py`: `tpru build` against a decode-only pass over the same "
            "generated frames, in one run. Targets: build images/s with W workers >= 0.5 x "
            "decode-only images/s with W processes; more workers build faster; peak RSS of "
            "the build's process tree < 2 GB at any dataset size. Newest run last.\n\n")
    with path.open("a") as handle:
        handle.write("\n" + text)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark tpru build against a decode-only pass over the same generated "
                    "JPEG frames: images/s, per-core ratio, scaling with --workers and peak "
                    "RSS; appends the results to bench/RESULTS.md.")
    parser.add_argument("--frames", type=int, default=20000,
                        help="640x480 JPEG frames to generate (default 20000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="build --workers values to run (default 1 2)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out",
                        help="folder for the generated frames and builds (default bench/out)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated frames")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "RESULTS.md",
                        help="markdown file the results are appended to")
    parser.add_argument("--quiet-wait", type=float, default=300, metavar="SECONDS",
                        help="before each pass, wait up to this long for other processes to "
                             "leave the CPUs idle (default 300; 0 to not wait)")
    args = parser.parse_args(argv)
    args.workers = sorted(set(args.workers))
    if args.frames < 100 or args.workers[0] < 1:
        parser.error("--frames must be at least 100 and --workers at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    root = args.out.resolve() / f"frames-{args.frames}"
    plan = ensure_frames(root, args.frames, args.seed)
    paths = frame_paths(root, plan)
    for path in paths:  # warm the page cache, so every pass reads from memory
        Path(path).read_bytes()
    decodes: dict[int, Run] = {}
    builds: dict[int, Run] = {}
    for w in args.workers:
        wait_for_quiet(args.quiet_wait)
        decodes[w] = decode_pass(paths, w)
        print(f"{decodes[w].name}: {decodes[w].rate:.0f} images/s")
        wait_for_quiet(args.quiet_wait)
        builds[w] = build_pass(f"build W={w}", root, args.out.resolve() / f"build-w{w}", w,
                               len(paths))
        print(f"{builds[w].name}: {builds[w].rate:.0f} images/s, peak {_mb(builds[w].peak_rss)}")
    q_root, q_frames = quarter_root(root, plan, len(paths) // 4)
    w0 = args.workers[0]
    wait_for_quiet(args.quiet_wait)
    quarter = build_pass(f"build W={w0}, quarter", q_root, args.out.resolve() / "build-quarter",
                         w0, q_frames)
    print(f"{quarter.name}: {quarter.rate:.0f} images/s, peak {_mb(quarter.peak_rss)}")
    text = report(args, decodes, builds, quarter, command)
    print("\n" + text)
    append_results(text, args.results)
    print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
