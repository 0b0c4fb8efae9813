"""Speed and memory of `tpru build`, measured side by side with a decode-only pass.

    .venv/bin/python bench/build_speed.py                  # 20,000 frames, workers 1 and 2
    .venv/bin/python bench/build_speed.py --frames 2000 --workers 1

What it does, top to bottom:

1. Generates ``--frames`` 640x480 JPEG frames (quality 90) as episodes of
   10-20 frames in the ``frames:`` layout (``ROOT/<scenario>/<episode>/000.jpg``
   plus ``episode.json``): smooth multi-scale noise backgrounds with film grain
   and a slow camera pan, and a few shapes that move every step, so frames pass
   the blur, near-duplicate and static filters (``frame_set.py``). Generation
   runs on every core and is cached: a marker file in ROOT says what is there.
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

Other processes on the machine skew wall-clock rates, so before each pass the
script waits (``--quiet-wait``) for the CPUs to go idle, records how many cores
others used during each pass, and also reports images per CPU second: the
per-core ratio on CPU time barely moves with other load.

Bench dependency: ``psutil`` (in the ``dev`` extra) for the
process-tree RSS. Without it the script falls back to ``ru_maxrss`` of the
largest single child process, which undercounts a build with workers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench_common import (
    BENCH_DIR,
    code_version,
    cpu_snapshot,
    machine,
    other_cores,
    wait_for_quiet,
)
from frame_set import QUALITY, ensure_frames, frame_paths, quarter_root  # bench/frame_set.py
from PIL import Image

try:
    import psutil
except ImportError:  # the fallback is described in the module docstring
    psutil = None

RSS_TARGET = 2 * 1024 ** 3
RATIO_TARGET = 0.5
FLAT_BYTES_PER_FRAME = 100
"""Peak RSS growing by less than this per extra frame counts as flat (noise, caches)."""
POLL_S = 0.05


# ---------------------------------------------------------------- decode only


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


def decode_pass(paths: list[str], processes: int) -> Run:
    """Decode every file, in this process (1) or a pool of `processes`."""
    machine0 = cpu_snapshot()
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
               other_cores=other_cores(machine0, wall))


# ---------------------------------------------------------------- the build


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


def build_pass(name: str, root: Path, out: Path, workers: int) -> Run:
    """Run `tpru build` as a subprocess; wall clock, CPU, peak tree RSS, measure-pass end."""
    if out.exists():
        shutil.rmtree(out)
    shutil.rmtree(out.with_name(out.name + ".partial"), ignore_errors=True)
    command = [*tpru_command(), "build", "--source", f"frames:{root}", "--out", str(out),
               "--workers", str(workers), "-q"]
    records = out.with_name(out.name + ".partial") / "work" / "episodes.jsonl"
    machine0 = cpu_snapshot()
    cpu0, start_wall, start = _children_cpu(), time.time(), time.perf_counter()
    samples: list[tuple[float, int]] = []  # (time, tree RSS), to split the peak by pass
    measure_end = None
    with tempfile.TemporaryFile() as log:  # not a pipe: a full pipe would stall the build
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        watched = psutil.Process(proc.pid) if psutil else None
        while proc.poll() is None:
            if watched is not None:
                with contextlib.suppress(psutil.Error):
                    samples.append((time.time(), _tree_rss(watched)))
            # Records are appended per episode in pass 1 only: their last write ends it.
            with contextlib.suppress(OSError):
                measure_end = records.stat().st_mtime
            time.sleep(POLL_S)
        wall = time.perf_counter() - start
        log.seek(0)
        output = log.read().decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed ({proc.returncode}):\n{output}")
    cpu = _children_cpu() - cpu0
    peak = max((rss for _, rss in samples), default=0)
    if watched is None:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    info = json.loads((out / "build.json").read_text())
    run = Run(name, info["counts"]["frames_read"], wall, cpu, peak,
              "tree RSS (psutil)" if watched else "largest child ru_maxrss",
              other_cores=other_cores(machine0, wall))
    run.extra["frames_kept"] = info["counts"]["frames_kept"]
    run.drops = {f"{k}.{reason}": n for k in ("inputs", "frames", "episodes")
                 for reason, n in info["drops"][k].items()}
    if measure_end is not None:
        run.extra["measure_s"] = measure_end - start_wall
        run.extra["measure_rss"] = max((r for t, r in samples if t <= measure_end), default=0)
        run.extra["formulate_rss"] = max((r for t, r in samples if t > measure_end), default=0)
    shutil.rmtree(out)  # a full build stores a copy of every frame
    return run


# ---------------------------------------------------------------- report


def cost_settings() -> str:
    """The default settings that decide the per-frame work, as this checkout has them."""
    from tpru.builder.config import BuildConfig

    config = BuildConfig()
    return (f"defaults image.analysis_side={config.image.analysis_side}, "
            f"image.max_side={config.image.max_side}, embed.name={config.embed.name}")


def _mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1024 ** 2:,.0f} MB"


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(args: argparse.Namespace, decodes: dict[int, Run], builds: dict[int, Run],
           quarter: Run, command: str, code: str) -> str:
    lines = [f"## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "",
             f"- machine: {machine(f'Pillow {Image.__version__}')}",
             f"- command: `{command}`",
             f"- code: {code}",
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
        flat = growth < FLAT_BYTES_PER_FRAME
        reach = "" if flat or full.peak_rss >= RSS_TARGET else \
            f"; 2 GB near {full.frames + (RSS_TARGET - full.peak_rss) / growth:,.0f} frames"
        lines.append(f"| peak RSS flat in dataset size | W={ws[0]}: {_mb(quarter.peak_rss)} at "
                     f"{quarter.frames} frames, {_mb(full.peak_rss)} at {full.frames}: "
                     f"{growth / 1024:.1f} KB per extra frame{reach} | "
                     f"{'met' if flat else 'NOT met (grows)'} |")
    lines += ["", "Build breakdown (pass 1 ends at the last write of `work/episodes.jsonl`):", ""]
    for run in [*builds.values(), quarter]:
        measure = run.extra.get("measure_s")
        if measure:
            lines.append(f"- {run.name}: read and measure {measure:.1f} s "
                         f"({run.frames / measure:.0f} images/s, peak "
                         f"{_mb(int(run.extra['measure_rss']))}), formulate and finish "
                         f"{run.wall_s - measure:.1f} s (peak "
                         f"{_mb(int(run.extra['formulate_rss']))})")
    lines.append(f"- peak RSS is {full.rss_kind}, polled every {POLL_S * 1000:.0f} ms; "
                 "the sum counts pages shared between the forked workers more than once.")
    lines.append("- other load: CPU that processes outside the benchmark used during the pass "
                 "(from /proc/stat); above about 0.1 cores the rates of that pass are unreliable.")
    return "\n".join(lines) + "\n"


def frames_note(builds: dict[int, Run]) -> str:
    run = next(iter(builds.values()))
    drops = ", ".join(f"{k} {v}" for k, v in run.drops.items()) or "none"
    return f"{run.extra['frames_kept']:.0f} kept by the filters (drops: {drops})"


RESULTS_HEADER = """# Benchmark results

`bench/build_speed.py` times `tpru build` against a decode-only pass over the same
generated frames, side by side in one run (speed targets are ratios, never timed
assertions in tests). Run it with:

    .venv/bin/pip install psutil        # once: process-tree RSS
    .venv/bin/python bench/build_speed.py --frames 20000 --workers 1 2   # or: make bench

Targets: build images/s with W workers >= 0.5 x decode-only images/s with W
processes (per core); more workers build faster; peak RSS of the build's process
tree < 2 GB whatever the dataset size. Each run appends a section; newest last.
"""


def append_results(text: str, path: Path) -> None:
    if not path.exists():
        path.write_text(RESULTS_HEADER)
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
    code = f"{code_version()}; {cost_settings()}"  # before the passes: others may edit src/
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
        builds[w] = build_pass(f"build W={w}", root, args.out.resolve() / f"build-w{w}", w)
        print(f"{builds[w].name}: {builds[w].rate:.0f} images/s, peak {_mb(builds[w].peak_rss)}")
    q_root, _ = quarter_root(root, plan, len(paths) // 4)
    w0 = args.workers[0]
    wait_for_quiet(args.quiet_wait)
    quarter = build_pass(f"build W={w0}, quarter", q_root, args.out.resolve() / "build-quarter",
                         w0)
    print(f"{quarter.name}: {quarter.rate:.0f} images/s, peak {_mb(quarter.peak_rss)}")
    text = report(args, decodes, builds, quarter, command, code)
    print("\n" + text)
    append_results(text, args.results)
    print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
