"""Pass 2 with its formulation on 2 workers against 1, on the same work files and cores.

    .venv/bin/python bench/formulate_speed.py                      # 40,000 frames, 4 scenarios
    .venv/bin/python bench/formulate_speed.py --frames 10000 --repeats 1 --no-record

Pass 2's formulation (windows, negatives, distractors, the samples' text) runs
on the engine's workers by (split, scenario) partition when the engine has
more than one CPU (`tpru.builder.partitions`); grouping, the indexes, merging,
linking images, the probes and the leakage check stay on the driver. This
bench measures what that buys on this machine:

1. Writes pass 1's work files once for ``--frames`` frames in ``--scenarios``
   scenarios (`build_memory.write_work`: episodes of 10-20 frames, random
   hashes, thumbnails and 64-d unit embeddings).
2. Runs pass 2 on a fresh copy of them in a child process
   (``build_memory.py --child``) with ``--workers 1`` and ``--workers 2`` in
   turn, ``--repeats`` times each, and checks the two outputs are the same bytes.
3. Reports the median wall time of each and the speedup (1-worker time over
   2-worker time), and appends them to ``bench/RESULTS.md`` (``--no-record``
   to skip).

The speedup is bounded by what stays on the driver and, on a 2-core machine,
by the driver sharing its cores with the two workers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from bench_common import BENCH_DIR, code_version, machine
from build_memory import SCENARIOS, write_work


def _digest(partial: Path) -> str:
    """SHA-256 over the split files a pass 2 wrote."""
    digest = hashlib.sha256()
    for path in sorted(partial.glob("*.jsonl")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_pass2(source: Path, root: Path, workers: int) -> tuple[float, str, int]:
    """Pass 2 on a copy of `source` with `workers`: wall seconds, output digest, samples."""
    partial = root / f"run{workers}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    done = subprocess.run([sys.executable, str(BENCH_DIR / "build_memory.py"), "--child",
                           str(partial), "--workers", str(workers)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"pass 2 with {workers} workers failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    digest = _digest(partial)
    shutil.rmtree(partial, ignore_errors=True)
    return float(result["wall_s"]), digest, int(result["samples"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=40_000)
    parser.add_argument("--scenarios", type=int, default=len(SCENARIOS),
                        help=f"scenarios the episodes are spread over (1-{len(SCENARIOS)})")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tpru-formulate-") as tmp:
        root = Path(tmp)
        source = root / "source.partial"
        frames = write_work(source, args.frames, scenarios=SCENARIOS[:args.scenarios])
        times: dict[int, list[float]] = {1: [], 2: []}
        digests: set[str] = set()
        samples = 0
        for _ in range(args.repeats):
            for workers in (1, 2):
                wall, digest, samples = run_pass2(source, root, workers)
                times[workers].append(wall)
                digests.add(digest)
                print(f"workers {workers}: {wall:.2f} s", flush=True)
    if len(digests) != 1:
        sys.exit("the outputs of 1 and 2 workers differ")
    one, two = statistics.median(times[1]), statistics.median(times[2])
    command = "python bench/formulate_speed.py " + " ".join(sys.argv[1:])
    section = "\n".join([
        f"\n## Pass 2 formulation on workers ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`{command.strip()}` on {machine()}, code {code_version()}.",
        f"{frames:,} frames in {args.scenarios} scenarios, {samples:,} samples; pass 2 in a "
        f"child process, median of {args.repeats}; outputs of 1 and 2 workers identical.",
        "",
        "| workers | pass 2 wall | runs |",
        "|---:|---:|---|",
        f"| 1 | {one:.2f} s | {', '.join(f'{t:.2f}' for t in times[1])} |",
        f"| 2 | {two:.2f} s | {', '.join(f'{t:.2f}' for t in times[2])} |",
        "",
        f"Speedup of pass 2 from 1 to 2 workers: **{one / two:.2f}**.",
        ""])
    print(section)
    if not args.no_record:
        with (BENCH_DIR / "RESULTS.md").open("a") as handle:
            handle.write(section)


if __name__ == "__main__":
    main()
