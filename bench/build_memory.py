"""Driver memory of `tpru build`'s pass 2 at two dataset sizes: is it flat?

    .venv/bin/python bench/build_memory.py                       # 20,000 and 200,000 frames
    .venv/bin/python bench/build_memory.py --frames 5000 50000 --no-record
    .venv/bin/python bench/build_memory.py --scenarios 1   # one shard beyond HNSW_FROM

Pass 2 (grouping, distractor indexes, formulation, leakage check, writing)
runs in the driver process whatever the engine, so its peak memory decides
how large a build one machine can drive. This bench measures it alone:

1. For each ``--frames`` count it writes pass 1's work files directly, in the
   on-disk format `tpru.builder.work` reads (``work/episodes.jsonl``,
   ``thumbs.u8``, ``embeddings.f32`` and a small staged file per image), as
   pass 1 would leave them after reading that many frames: episodes of 10-20
   frames in 4 scenarios (``--scenarios``: fewer, so that a scenario's train
   split passes `HNSW_FROM` frames and its neighbour index is an HNSW file
   built by a child process), random 64-bit hashes, thumbnails and unit
   embeddings, with every 25th episode re-using a few frames of an earlier
   one and a near-duplicate of a fourth, so the grouping and the leakage
   check have duplicates to join.
   Decoding 200,000 real frames would take most of an hour on 2 cores and
   measures pass 1, which `bench/build_speed.py` covers; pass 2 reads only
   these files.
2. Runs pass 2 (`tpru.builder.pipeline`'s formulate step, as ``tpru build``
   runs it after pass 1) in a fresh child process per size, and records the
   child's peak RSS (``ru_maxrss``: anonymous memory and the pages of
   memory-mapped files it touched), its RSS just before pass 2 (Python,
   numpy, faiss loaded), the peaks of its anonymous memory (``RssAnon``) and
   of its mapped files' pages (``RssFile``), both polled every 20 ms from
   ``/proc``, and the peak RSS of its own child processes (the HNSW builds).
3. Reports both sizes and the slope (bytes per extra frame) and appends a
   section to ``bench/RESULTS.md`` (``--no-record`` to skip).

Targets (issue 14): peak RSS under 1 GB at both sizes, and flat: growing by
less than `FLAT_BYTES_PER_FRAME` per extra frame.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from bench_common import BENCH_DIR, code_version, machine

RSS_TARGET = 1024 ** 3
FLAT_BYTES_PER_FRAME = 100
"""Peak RSS growing by less than this per extra frame counts as flat (noise, caches)."""
SCENARIOS = ("kitchen", "office", "street", "lab")
DIM = 64
POLL_S = 0.02


# ---------------------------------------------------------------- pass 1's files, generated


def write_work(partial: Path, frames: int, seed: int = 0,
               scenarios: tuple[str, ...] = SCENARIOS) -> int:
    """Pass 1's work files for about `frames` kept frames in `partial`/work, their episodes
    in `scenarios` in turn; frames written."""
    from tpru.builder.images import THUMB_SIDE
    from tpru.builder.work import EMBEDDINGS, RECORDS, THUMBS, WORK

    rng = np.random.default_rng(seed)
    work = partial / WORK
    stage = work / "frames"
    stage.mkdir(parents=True)
    for a in range(256):
        (stage / f"{a:02x}").mkdir()
    side = THUMB_SIDE ** 2
    written = 0
    ordinal = 0
    earlier: list[tuple[str, int, np.ndarray, np.ndarray]] = []  # frames to copy
    with (work / RECORDS).open("w") as records, (work / THUMBS).open("wb") as thumbs, \
            (work / EMBEDDINGS).open("wb") as embeddings:
        while written < frames:
            length = min(int(rng.integers(10, 21)), frames - written)
            if length < 4:
                length = 4
            scenario = scenarios[ordinal % len(scenarios)]
            digests = [rng.bytes(16).hex() for _ in range(length)]
            phashes = rng.integers(0, 2 ** 63, size=length, dtype=np.int64).astype(np.uint64)
            thumb = rng.integers(0, 256, size=(length, side), dtype=np.uint8)
            vectors = rng.standard_normal((length, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            if ordinal % 25 == 24 and earlier:
                # A re-recording: three frames identical to an earlier episode's.
                for f in range(3):
                    digests[f], ph, thumb[f], vectors[f] = earlier[f]
                    phashes[f] = ph
                # ... and one a near-duplicate: 2 bits of its hash and its thumbnail moved.
                digests[3] = rng.bytes(16).hex()
                phashes[3] = np.uint64(earlier[2][1] ^ 0b101)
                thumb[3] = np.clip(earlier[2][2].astype(np.int16) + 1, 0, 255)
            if ordinal % 25 == 0:
                earlier = [(digests[f], int(phashes[f]), thumb[f].copy(), vectors[f].copy())
                           for f in range(3)]
            for digest in digests:
                (stage / digest[:2] / f"{digest}.jpg").write_bytes(b"jpg")
            record = {
                "ordinal": ordinal,
                "episode": {"id": f"ep{ordinal:07d}", "scenario": scenario,
                            "description": f"do task {ordinal % 97} in the {scenario}"},
                "frames_read": length, "drops": {}, "examples": {}, "dropped": None,
                "frames": [{"index": i, "digest": d, "ext": "jpg", "phash": int(p)}
                           for i, (d, p) in enumerate(zip(digests, phashes.tolist(),
                                                          strict=True))],
                "embedding_dim": DIM,
            }
            records.write(json.dumps(record, sort_keys=True) + "\n")
            thumbs.write(thumb.tobytes())
            embeddings.write(vectors.tobytes())
            written += length
            ordinal += 1
    return written


# ---------------------------------------------------------------- pass 2, in a child


def child(partial: Path, workers: int) -> None:
    """Run pass 2 on `partial` and print its numbers as JSON (the child process)."""
    from tpru.builder.config import BuildConfig
    from tpru.builder.engine import open_engine
    from tpru.builder.pipeline import _formulate_all
    from tpru.diagnostics import Skips

    # Loaded before the "before" reading at every size: a library, not a cost per frame
    # (the driver imports it only for an HNSW index when the workers do the searches).
    with contextlib.suppress(ImportError):
        import faiss  # noqa: F401
    config = BuildConfig(sources=("frames:unused",), out=str(partial.with_suffix("")),
                         workers=workers)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    with open_engine(config) as engine:
        info = _formulate_all(config, partial, Skips(), False, None, engine)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"before": before, "peak": peak, "children": children, "wall_s": wall,
                      "frames": info["counts"]["frames_kept"],
                      "episodes": info["counts"]["episodes_kept"],
                      "samples": info["counts"]["samples_total"]}))


def _rss(pid: int) -> tuple[int, int]:
    """The process's anonymous and file-backed resident memory (``RssAnon``, ``RssFile``)."""
    found = {"RssAnon:": 0, "RssFile:": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.split(maxsplit=1)[0] in found:
                found[line.split()[0]] = int(line.split()[1]) * 1024
    except (OSError, IndexError):
        pass
    return found["RssAnon:"], found["RssFile:"]


def measure(frames: int, root: Path, workers: int, scenarios: int) -> dict[str, float]:
    partial = root / f"d{frames}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    start = time.perf_counter()
    written = write_work(partial, frames, scenarios=SCENARIOS[:scenarios])
    generated = time.perf_counter() - start
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(partial),
                             "--workers", str(workers)], stdout=subprocess.PIPE, text=True)
    anon = mapped = 0
    while proc.poll() is None:
        now_anon, now_mapped = _rss(proc.pid)
        anon, mapped = max(anon, now_anon), max(mapped, now_mapped)
        time.sleep(POLL_S)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        sys.exit(f"pass 2 on {frames} frames failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(written=written, generate_s=generated, anon=anon, mapped=mapped)
    shutil.rmtree(partial, ignore_errors=True)
    return result


# ---------------------------------------------------------------- report


def _mb(n: float) -> str:
    return f"{n / 1024 ** 2:,.0f} MB"


def report(results: dict[int, dict[str, float]], command: str, scenarios: int) -> str:
    sizes = sorted(results)
    small, large = results[sizes[0]], results[sizes[-1]]
    extra = max(1.0, large["frames"] - small["frames"])
    slope = (large["peak"] - small["peak"]) / extra
    anon_slope = (large["anon"] - small["anon"]) / extra
    lines = [f"## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: pass 2 driver memory "
             "(`bench/build_memory.py`)", "",
             f"- machine: {machine()}",
             f"- command: `{command}`",
             f"- code: {code_version()}",
             "- frames: pass 1's work files written directly (random hashes, thumbnails and "
             f"64-d embeddings, episodes of 10-20 frames in {scenarios} scenario(s), every "
             "25th episode "
             "re-using 3 frames of an earlier one and a near-duplicate of a fourth); pass 2 "
             "alone in a child process", "",
             "| frames kept | episodes | samples | pass 2 wall s | RSS before pass 2 | "
             "peak RSS | peak RssAnon | peak RssFile | child processes' peak RSS |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        r = results[size]
        lines.append(f"| {r['frames']:.0f} | {r['episodes']:.0f} | {r['samples']:.0f} | "
                     f"{r['wall_s']:.1f} | {_mb(r['before'])} | {_mb(r['peak'])} | "
                     f"{_mb(r['anon'])} | {_mb(r['mapped'])} | {_mb(r['children'])} |")
    ok_size = all(r["peak"] < RSS_TARGET for r in results.values())
    lines += ["", "| target | measured | result |", "|---|---|---|",
              f"| peak RSS < 1 GB at every size | {_mb(max(r['peak'] for r in results.values()))}"
              f" | {'met' if ok_size else 'NOT met'} |",
              f"| flat: < {FLAT_BYTES_PER_FRAME} B per extra frame | peak RSS {slope:.0f} B/frame"
              f", RssAnon {anon_slope:.0f} B/frame | "
              f"{'met' if slope < FLAT_BYTES_PER_FRAME else 'NOT met'} |", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scenarios", type=int, default=len(SCENARIOS),
                        choices=range(1, len(SCENARIOS) + 1),
                        help="scenarios the episodes are spread over (1: the train split's "
                             "index passes HNSW_FROM at 200,000 frames)")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workers)
        return
    command = "python bench/build_memory.py " + " ".join(
        ["--frames", *map(str, args.frames)] +
        (["--workers", str(args.workers)] if args.workers != 1 else []) +
        (["--scenarios", str(args.scenarios)] if args.scenarios != len(SCENARIOS) else []))
    results = {}
    with tempfile.TemporaryDirectory(prefix="tpru-memory-") as tmp:
        for frames in args.frames:
            results[frames] = measure(frames, Path(tmp), args.workers, args.scenarios)
            r = results[frames]
            print(f"{r['frames']:.0f} frames: generated in {r['generate_s']:.1f} s, pass 2 "
                  f"{r['wall_s']:.1f} s, peak RSS {_mb(r['peak'])} (before {_mb(r['before'])})"
                  f", peak RssAnon {_mb(r['anon'])}, peak RssFile {_mb(r['mapped'])}, child "
                  f"processes' peak RSS {_mb(r['children'])}", flush=True)
    text = report(results, command, args.scenarios)
    print(text)
    if not args.no_record:
        with (BENCH_DIR / "RESULTS.md").open("a") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
