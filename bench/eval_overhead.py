"""The evaluation harness's own cost per sample, measured beside the model's generate.

    .venv/bin/python bench/eval_overhead.py                    # tiny model, CPU, 300 items
    .venv/bin/python bench/eval_overhead.py --threads 1 --repeats 3
    .venv/bin/python bench/eval_overhead.py --vllm-compare     # vLLM against HF on a GPU
    python bench/eval_overhead.py --vllm-compare --device cpu --limit 48   # vLLM's CPU build

What the default (CPU) mode does, top to bottom:

1. Writes synthetic episodes of four scenarios at 640x480 and builds a tpru
   dataset from them with ``tpru build`` (``image.max_side=640``), so every
   item carries 4 (ordering) or 7 (next and previous frame) 640x480 JPEGs.
   Episodes, dataset and the tiny model are cached under ``--out``.
2. Loads the tiny offline Qwen2.5-VL (`tpru.models.tiny`) in the HF backend and
   wraps it in `TimedBackend`, which clocks the wall time spent inside each
   ``generate`` call.
3. Runs `tpru.eval.runner.run_eval` over the items at ``--batch-size``, once to
   warm up, then ``--repeats`` timed times, each after waiting for other
   processes to leave the CPUs idle. Harness time = run_eval's wall time minus
   the time inside generate: reading the items, rendering prompts, building
   requests, answer extraction, writing results.jsonl and run.json.
4. Runs the same items again through a backend that replays the recorded
   responses at no cost: its wall time is the harness alone, a second
   measurement of the same quantity that no model timing can blur.
5. One profiled run (cProfile): a harness profile that is switched off inside
   generate, and a model-side profile switched on only there, printed as the
   top entries and a breakdown of generate.
6. A markdown section on the terminal, appended to ``--results``.

Generate includes the HF backend's own host work: decoding each JPEG at full
size and the processor's resize and patching at the real image size (the tiny
model's processor then shrinks it to at most 112x112, so its forward pass is
cheap while its image preprocessing is real). That is model-side work, counted
in generate, not in the harness. A 7B model in the HF backend takes longer per
item than this, so its harness share is lower; a fast engine at large batches
(vLLM) may take less, which is why ``--vllm-compare`` reports the share too.

``--vllm-compare`` (needs vllm): builds a randomly initialised Qwen2.5-VL from a
config, with the tiny model's tokenizer and chat template, no download;
output-embedding rows past the tokenizer's vocabulary are zeroed, so that both
engines only pick tokens it can decode. With ``--device cuda`` (the default) it
has the 7B's shapes (8.29 B parameters, bfloat16, 640x480 images kept whole); with
``--device cpu`` (vLLM's CPU build, ``vllm-cpu``) the ``small`` shapes (the text
model of Qwen2.5-0.5B and an 8-block vision tower, float32, images bounded to
320x240), which two cores can run. ``--size`` picks other shapes. Then it runs the
HF backend and the vLLM backend on the same items and prompts, and records the
device with the timings, the harness share of each and how often their greedy
answers agree. Without CUDA (for cuda) or vllm it stops with a one-line reason.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import pstats
import re
import shlex
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench_common import (
    BENCH_DIR,
    QWEN25_VL_SHAPES,
    code_version,
    cpu_snapshot,
    ensure_dataset,
    ensure_random_qwen25_vl,
    ensure_tiny,
    machine,
    other_cores,
    torch_versions,
    wait_for_quiet,
)

from tpru.eval.benchmarks import load_benchmark
from tpru.eval.config import EvalConfig
from tpru.eval.items import Benchmark
from tpru.eval.runner import RESULTS_FILE, read_results, run_eval
from tpru.models.base import Backend, Request, Response

TARGET_SHARE = 0.05
GPU_MAX_PIXELS = 640 * 480
"""Image bound of the 7B-sized model's processor: a 640x480 frame keeps its size (644x476
after rounding to 28 pixels, 391 image tokens), as Qwen2.5-VL's default bound would keep it."""
CPU_MAX_PIXELS = 320 * 240
"""Image bound of the small model's processor on a CPU: a 640x480 frame is shrunk to about
320x240 (about 100 image tokens)."""


# ---------------------------------------------------------------- timing


class TimedBackend:
    """A backend wrapper that records the wall time of every `generate` call.

    With `harness` and `model` profilers, the first is switched off and the
    second on while the wrapped generate runs, so they split the run cleanly.
    """

    def __init__(self, inner: Backend, harness: cProfile.Profile | None = None,
                 model: cProfile.Profile | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[float, float]] = []  # (start, end) per call, perf_counter
        self.harness, self.model = harness, model

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if self.harness is not None and self.model is not None:
            self.harness.disable()
            self.model.enable()
        start = time.perf_counter()
        try:
            responses = self.inner.generate(requests)
        finally:
            self.calls.append((start, time.perf_counter()))
            if self.harness is not None and self.model is not None:
                self.model.disable()
                self.harness.enable()
        return responses


class ReplayBackend:
    """Answers with the responses of an earlier run, at no cost: a run on it is harness only."""

    def __init__(self, name: str, responses: Mapping[str, Response]) -> None:
        self.name = name
        self.responses = responses

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [self.responses[r.id] for r in requests]


@dataclass
class Measure:
    """One timed run_eval: its wall time, the part inside generate, and where the rest went."""

    name: str
    items: int
    wall_s: float
    generate_s: float
    before_s: float = 0.0
    between_s: float = 0.0
    after_s: float = 0.0
    other_cores: float = 0.0
    completion_tokens: int = 0
    errors: int = 0

    @property
    def harness_s(self) -> float:
        return self.wall_s - self.generate_s

    @property
    def share(self) -> float:
        return self.harness_s / self.wall_s


def timed_run(backend: Backend, bench: Benchmark, folder: Path, args: argparse.Namespace,
              name: str, batch_size: int | None = None) -> Measure:
    """run_eval of `backend` over the first ``--limit`` items into a fresh `folder`, timed."""
    shutil.rmtree(folder, ignore_errors=True)
    timed = backend if isinstance(backend, TimedBackend) else TimedBackend(backend)
    machine0 = cpu_snapshot()
    start = time.perf_counter()
    config = EvalConfig(limit=args.limit, seed=args.seed,
                        batch_size=batch_size or args.batch_size,
                        max_new_tokens=args.max_new_tokens)
    summary = run_eval(timed, bench, folder, config)
    end = time.perf_counter()
    calls = timed.calls
    records = [json.loads(line) for line in (folder / RESULTS_FILE).open(encoding="utf-8")]
    return Measure(
        name, summary.items, end - start, sum(b - a for a, b in calls),
        before_s=calls[0][0] - start if calls else end - start,
        between_s=sum(calls[i + 1][0] - calls[i][1] for i in range(len(calls) - 1)),
        after_s=end - calls[-1][1] if calls else 0.0,
        other_cores=other_cores(machine0, end - start),
        completion_tokens=sum(int(r["usage"].get("completion_tokens", 0)) for r in records),
        errors=summary.errors)


def replay_responses(folder: Path) -> dict[str, Response]:
    return {key: Response(key, r.response, error=r.error, usage=r.usage)
            for key, r in read_results(folder / RESULTS_FILE).items()}


def profiled_run(backend: Backend, bench: Benchmark, folder: Path,
                 args: argparse.Namespace) -> tuple[pstats.Stats, pstats.Stats, Measure]:
    """One run under two profilers: the harness outside generate, the model inside it."""
    harness, model = cProfile.Profile(), cProfile.Profile()
    timed = TimedBackend(backend, harness, model)
    harness.enable()
    try:
        measure = timed_run(timed, bench, folder, args, "profiled")
    finally:
        harness.disable()
    return pstats.Stats(harness), pstats.Stats(model), measure


# ---------------------------------------------------------------- report


def _where(name: str) -> str:
    """A profile entry's file:line(function), with the environment's prefixes cut."""
    for marker in ("site-packages/", "/src/"):
        if marker in name:
            return name.split(marker, 1)[1]
    return re.sub(r"^.*/lib/python3\.\d+/", "", name)  # the standard library


def profile_rows(stats: pstats.Stats, top: int, items: int) -> list[str]:
    """The top entries of the harness profile by cumulative time, as markdown rows."""
    profile = stats.get_stats_profile()
    rows = []
    entries = sorted(profile.func_profiles.items(), key=lambda kv: -kv[1].cumtime)
    for name, entry in entries:
        if "_lsprof.Profiler" in name or entry.file_name.endswith("eval_overhead.py"):
            continue  # the profilers switching, and this script's own wrappers
        where = f"{_where(entry.file_name)}:{entry.line_number}({name})" \
            if entry.file_name != "~" else name
        rows.append(f"| `{where}` | {entry.ncalls} | {entry.tottime * 1000:.0f} | "
                    f"{entry.cumtime * 1000:.0f} | {entry.cumtime * 1000 / items:.2f} |")
        if len(rows) == top:
            break
    return rows


GENERATE_PARTS = (
    ("decode the JPEGs (hf.load_images)", "tpru/models/hf.py", "load_images"),
    ("processor: chat template, image resize and patches, tokenize (hf._encode)",
     "tpru/models/hf.py", "_encode"),
    ("model.generate (vision tower, prefill, decode steps)", "transformers/generation/utils.py",
     "generate"),
    ("detokenize", "tokenization_utils", "decode"),
)


def generate_parts(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Cumulative seconds of the named parts of the HF backend's generate, in the profile."""
    profile = stats.get_stats_profile()
    parts = []
    for label, path, function in GENERATE_PARTS:
        times = [e.cumtime for n, e in profile.func_profiles.items()
                 if n == function and path in e.file_name]
        if times:
            parts.append((label, max(times)))
    return parts


def items_note(bench: Benchmark, limit: int | None) -> str:
    from itertools import islice

    counts = Counter(len(item.images) for item in islice(bench.items(), limit))
    return ", ".join(f"{n} items with {k} images" for k, n in sorted(counts.items()))


def header(args: argparse.Namespace, command: str, code: str, title: str) -> list[str]:
    return [f"## {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: {title}", "",
            f"- machine: {machine(torch_versions())}", f"- command: `{command}`", f"- code: {code}",
            f"- run_eval: batch size {args.batch_size}, max_new_tokens {args.max_new_tokens}, "
            f"prompt tpru, greedy; results.jsonl flushed per batch"]


def measure_rows(runs: Sequence[Measure]) -> list[str]:
    lines = ["| pass | items | wall s | in generate s | harness s | harness ms/item | "
             "generate ms/item | harness share | other load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in runs:
        model = m.generate_s > 0  # a replay has no model: all of it is harness
        lines.append(f"| {m.name} | {m.items} | {m.wall_s:.2f} | "
                     f"{f'{m.generate_s:.2f}' if model else '-'} | {m.harness_s:.3f} | "
                     f"{m.harness_s * 1000 / m.items:.2f} | "
                     f"{f'{m.generate_s * 1000 / m.items:.1f}' if model else '-'} | "
                     f"{f'{m.share:.2%}' if model else '-'} | {m.other_cores:.2f} cores |")
    errors = sum(m.errors for m in runs)
    if errors:
        lines += ["", f"{errors} requests came back with an error (see results.jsonl)."]
    return lines


def cpu_report(args: argparse.Namespace, command: str, code: str, data_note: str,
               runs: list[Measure], replay: Measure, harness: pstats.Stats,
               model: pstats.Stats, profiled: Measure) -> str:
    best = min(runs, key=lambda m: m.other_cores)
    median_share = statistics.median(m.share for m in runs)
    replay_share = replay.wall_s / (replay.wall_s + best.generate_s)
    n = best.items
    lines = [*header(args, command, code, "eval harness overhead, tiny model on CPU"),
             f"- data: {data_note}",
             "- model: the tiny offline Qwen2.5-VL, HF backend, float32 on CPU; generate "
             "includes decoding each 640x480 JPEG and the processor's resize at that size "
             "(model-side work, not harness)", "", *measure_rows([*runs, replay]), "",
             "| target | measured | result |", "|---|---|---|",
             f"| harness <= {TARGET_SHARE:.0%} of run_eval time at batch {args.batch_size} | "
             f"median {median_share:.2%} over {len(runs)} runs; replayed harness / (replayed "
             f"harness + generate of the quietest run): {replay_share:.2%} | "
             f"{'met' if max(median_share, replay_share) <= TARGET_SHARE else 'NOT met'} |", "",
             f"Harness time by phase, quietest run ({best.name}): before the first batch "
             f"(read and check the items, write run.json) {best.before_s * 1000:.0f} ms "
             f"({best.before_s * 1000 / n:.2f} ms/item); between batches (prompts, requests, "
             f"extraction, results.jsonl) {best.between_s * 1000:.0f} ms "
             f"({best.between_s * 1000 / n:.2f} ms/item); after the last (run.json) "
             f"{best.after_s * 1000:.0f} ms.", "",
             "Where generate's time goes (model-side profile, cProfile on, "
             f"{profiled.generate_s:.1f} s in generate):", ""]
    for label, seconds in generate_parts(model):
        lines.append(f"- {label}: {seconds * 1000 / n:.1f} ms/item "
                     f"({seconds / profiled.generate_s:.0%})")
    lines += ["", f"Harness profile (cProfile switched off inside generate), top "
              f"{args.profile_top} by cumulative time; the profiler inflates Python-heavy code, "
              "so read shares, not absolute times:", "",
              "| function | calls | self ms | cumulative ms | cumulative ms/item |",
              "|---|---:|---:|---:|---:|", *profile_rows(harness, args.profile_top, n)]
    return "\n".join(lines) + "\n"


def cpu_mode(args: argparse.Namespace, command: str, code: str) -> str:
    import torch

    from tpru.models.hf import HFBackend

    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = ensure_dataset(args.out, args.episodes, args.frames, args.seed)
    # every split, as when these timings were first taken (a speed, not a score)
    bench = load_benchmark(f"dataset:{dataset}", cache_dir=args.out / "cache", split="all")
    backend = HFBackend(str(ensure_tiny(args.out)), dtype="float32", device="cpu",
                        batch_size=args.batch_size)
    runs_dir = args.out / "runs"
    warm = argparse.Namespace(**{**vars(args), "limit": args.batch_size})
    timed_run(backend, bench, runs_dir / "warmup", warm, "warm-up")
    runs = []
    for repeat in range(args.repeats):
        wait_for_quiet(args.quiet_wait)
        runs.append(timed_run(backend, bench, runs_dir / f"timed-{repeat}", args,
                              f"run_eval, tiny model ({repeat + 1})"))
        print(f"{runs[-1].name}: {runs[-1].wall_s:.1f} s, harness {runs[-1].share:.2%}")
    replay = ReplayBackend("replay", replay_responses(runs_dir / "timed-0"))
    wait_for_quiet(args.quiet_wait)
    replayed = timed_run(replay, bench, runs_dir / "replay", args,
                         "run_eval, recorded responses replayed (harness alone)")
    replayed.generate_s = 0.0  # the replay's "generate" is a dictionary lookup: harness
    harness, model, profiled = profiled_run(backend, bench, runs_dir / "profiled", args)
    note = f"{items_note(bench, args.limit)} (640x480 JPEG), from `tpru build` of " \
           f"{args.episodes} synthetic episodes x 4 scenarios, {args.frames} frames each"
    return cpu_report(args, command, code, note, runs, replayed, harness, model, profiled)


# ---------------------------------------------------------------- vLLM against HF


COMPARE_DEFAULTS = {"cuda": ("7b", "bfloat16", GPU_MAX_PIXELS),
                    "cpu": ("small", "float32", CPU_MAX_PIXELS)}
"""Per device: the model's shapes, the dtype both backends run in, the image bound."""


def compare_mode(args: argparse.Namespace, command: str, code: str) -> str:
    """vLLM against HF on one random-init Qwen2.5-VL, the same items and prompts."""
    import os

    import torch

    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("eval_overhead.py --vllm-compare: --device cuda needs a CUDA GPU, and "
                 "torch.cuda.is_available() is False on this machine (--device cpu runs "
                 "vLLM's CPU build)")
    if device == "cpu":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")  # GiB; vLLM's CPU cache
    try:
        import vllm
    except ImportError as err:
        sys.exit(f"eval_overhead.py --vllm-compare: needs vllm ({err}); pip install "
                 "'tpru[vllm]' on a GPU machine, or the CPU build (vllm-cpu, see "
                 "tests/models/test_vllm_backend.py)")
    from tpru.models.hf import HFBackend
    from tpru.models.vllm import VLLMBackend

    size, dtype, max_pixels = COMPARE_DEFAULTS[device]
    size = args.size or size
    dataset = ensure_dataset(args.out, args.episodes, args.frames, args.seed)
    # every split, as when these timings were first taken (a speed, not a score)
    bench = load_benchmark(f"dataset:{dataset}", cache_dir=args.out / "cache", split="all")
    model_dir = ensure_random_qwen25_vl(args.out / f"qwen25-vl-{size}-random",
                                        ensure_tiny(args.out), size, args.seed,
                                        max_pixels=max_pixels, device=device)
    runs_dir = args.out / f"compare-{device}"
    warm = argparse.Namespace(**{**vars(args), "limit": args.batch_size})
    hf = HFBackend(str(model_dir), dtype=dtype, device=device, batch_size=args.batch_size)
    timed_run(hf, bench, runs_dir / "hf-warmup", warm, "warm-up")
    wait_for_quiet(args.quiet_wait)
    runs = [timed_run(hf, bench, runs_dir / "hf", args, f"HF, batch {args.batch_size}")]
    del hf
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    engine = VLLMBackend(str(model_dir), dtype=dtype, max_model_len=args.max_model_len,
                         gpu_memory_utilization=0.85, limit_images=8)
    # vLLM compiles (torch.compile, CUDA graphs) per shape it meets: warm up on every item,
    # or the first timed pass pays for compiling what the later ones reuse.
    timed_run(engine, bench, runs_dir / "vllm-warmup", args, "warm-up",
              batch_size=args.vllm_batch_size)
    folders = {"hf": runs_dir / "hf"}
    for batch in sorted({args.batch_size, args.vllm_batch_size}):
        folders[f"vllm{batch}"] = runs_dir / f"vllm-b{batch}"
        wait_for_quiet(args.quiet_wait)
        runs.append(timed_run(engine, bench, folders[f"vllm{batch}"], args,
                              f"vLLM, batch {batch}", batch_size=batch))
    gold = read_results(folders["hf"] / RESULTS_FILE)
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        where = (f"{props.name}, {props.total_memory / 1024 ** 3:.0f} GiB, "
                 f"CUDA {torch.version.cuda}")
    else:
        where = f"the CPU ({machine()})"
    params = _parameters(model_dir)
    lines = [*header(args, command, code, f"vLLM against HF, random {size}-sized Qwen2.5-VL"),
             f"- device: {where}, vllm {vllm.__version__}",
             f"- model: random-init Qwen2.5-VL with the {size} shapes "
             f"({params / 1e9:.2f} B parameters), {dtype}, images bounded to {max_pixels} "
             f"pixels; data: {items_note(bench, args.limit)}", "", *measure_rows(runs), "",
             "| pass | items/s | completion tokens/s in generate | same response as HF | "
             "same extracted answer as HF |", "|---|---:|---:|---:|---:|"]
    for m, folder in zip(runs, folders.values(), strict=True):
        got = read_results(folder / RESULTS_FILE)
        same = sum(got[k].response == r.response for k, r in gold.items() if k in got)
        answer = sum(got[k].prediction == r.prediction for k, r in gold.items() if k in got)
        lines.append(f"| {m.name} | {m.items / m.wall_s:.2f} | "
                     f"{m.completion_tokens / max(m.generate_s, 1e-9):.0f} | "
                     f"{same / len(gold):.0%} | {answer / len(gold):.0%} |")
    return "\n".join(lines) + "\n"


def _parameters(model_dir: Path) -> int:
    """Parameter count from the safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                total += math.prod(handle.get_slice(key).get_shape())
    return total


# ---------------------------------------------------------------- main


RESULTS_HEADER = """# Evaluation harness overhead (draft)

`bench/eval_overhead.py` times `run_eval` and, inside it, the backend's generate, side by
side in one run. Target: the harness (everything but generate) takes at most 5% of the
run at batch size 8. Each run appends a section; newest last.
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the evaluation harness's own time per sample (run_eval minus the "
                    "backend's generate) on the tiny Qwen2.5-VL at 640x480, with a harness "
                    "profile; or, with --vllm-compare, vLLM against HF on a random "
                    "Qwen2.5-VL. Appends a markdown section to --results.")
    parser.add_argument("--episodes", type=int, default=25,
                        help="synthetic episodes per scenario (4 scenarios, 3 items each; "
                             "default 25: 300 items)")
    parser.add_argument("--frames", type=int, default=8, help="frames per episode (default 8)")
    parser.add_argument("--limit", type=int, default=None,
                        help="run only the first N items (default all)")
    parser.add_argument("--batch-size", type=int, default=8, help="run_eval batch (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=32,
                        help="generation budget per item (default 32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default torch's own: one per core)")
    parser.add_argument("--profile-top", type=int, default=15,
                        help="harness profile entries to list (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and runs (default 0)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "eval-overhead",
                        help="folder for the data, models and runs (default "
                             "bench/out/eval-overhead)")
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "RESULTS.md",
                        help="markdown file the results are appended to")
    parser.add_argument("--quiet-wait", type=float, default=300, metavar="SECONDS",
                        help="before each timed run, wait up to this long for other processes "
                             "to leave the CPUs idle (default 300; 0 to not wait)")
    parser.add_argument("--vllm-compare", "--gpu-compare", action="store_true",
                        help="vLLM against HF on a random-init Qwen2.5-VL (needs vllm) instead "
                             "of the overhead run")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="--vllm-compare: where both backends run (default cuda; cpu needs "
                             "vLLM's CPU build)")
    parser.add_argument("--size", choices=sorted(QWEN25_VL_SHAPES), default=None,
                        help="--vllm-compare: the model's shapes (default 7b on cuda, small "
                             "on cpu)")
    parser.add_argument("--vllm-batch-size", type=int, default=64,
                        help="--vllm-compare: a second, larger run_eval batch for vLLM "
                             "(default 64)")
    parser.add_argument("--max-model-len", type=int, default=8192,
                        help="--vllm-compare: vLLM context length (default 8192)")
    args = parser.parse_args(argv)
    if min(args.episodes, args.batch_size, args.repeats, args.max_new_tokens) < 1 \
            or (args.limit is not None and args.limit < args.batch_size) \
            or not 4 <= args.frames <= 12:
        parser.error("--episodes, --batch-size, --repeats and --max-new-tokens must be at "
                     "least 1, --limit at least the batch size, --frames 4 to 12")
    args.out = args.out.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    code = code_version()  # before the runs: others may edit src/ meanwhile
    text = compare_mode(args, command, code) if args.vllm_compare \
        else cpu_mode(args, command, code)
    print("\n" + text)
    if not args.results.exists():
        args.results.write_text(RESULTS_HEADER)
    with args.results.open("a") as handle:
        handle.write("\n" + text)
    print(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
