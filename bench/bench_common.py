"""What the benchmarks share: the machine and code they ran on, their data, their models.

Imported by the scripts in bench/ (run as ``python bench/NAME.py``, so this folder is on
the import path).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
FRAME_SIZE = (640, 480)

_ROPE = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}
_VISION = {
    "depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
    "fullatt_block_indexes": [7, 15, 23, 31], "window_size": 112, "patch_size": 14,
    "spatial_merge_size": 2, "temporal_patch_size": 2, "tokens_per_second": 2,
}
QWEN25_VL_SHAPES: dict[str, tuple[dict[str, object], dict[str, object]]] = {
    "small": ({"vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
               "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
               "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
               "tie_word_embeddings": True,
               "rope_parameters": {**_ROPE, "mrope_section": [8, 12, 12]}},  # head size 64
              {**_VISION, "depth": 8, "hidden_size": 640, "intermediate_size": 1710,
               "num_heads": 10, "fullatt_block_indexes": [3, 7], "out_hidden_size": 896}),
    "3b": ({"vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008,
            "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2,
            "max_position_embeddings": 128000, "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True, "rope_parameters": _ROPE},
           {**_VISION, "out_hidden_size": 2048}),
    "7b": ({"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
            "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
            "max_position_embeddings": 128000, "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False, "rope_parameters": _ROPE},
           {**_VISION, "out_hidden_size": 3584}),
}
"""(text, vision) shapes of Qwen2.5-VL-3B- and 7B-Instruct as published in their
config.json files; token ids come from the tiny tokenizer instead. ``small`` (for CPU
runs) is the text model of Qwen2.5-0.5B under an 8-block, 640-wide vision tower."""


# ---------------------------------------------------------------- the machine and the code


def machine(*extras: str) -> str:
    """Cores, CPU model and Python version, then `extras` (library versions)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return ", ".join([f"{os.cpu_count()} cores", model, f"Python {platform.python_version()}",
                      *extras])


def torch_versions() -> str:
    """torch (with its thread count) and transformers versions, for `machine`."""
    import torch
    import transformers

    return (f"torch {torch.__version__} (threads: {torch.get_num_threads()}), transformers "
            f"{transformers.__version__}")


def cpu_snapshot() -> tuple[float, float]:
    """(CPU seconds the whole machine was busy, CPU seconds of this process and its
    children: the ones that ended and the ones still running, such as vLLM's engine)."""
    import psutil

    busy = 0.0
    with contextlib.suppress(OSError, ValueError):
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    ours = sum(os.times()[:4])
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            ours += times.user + times.system
    return busy, ours


def other_cores(before: tuple[float, float], wall_s: float) -> float:
    """Cores other processes used on average since `before` (a `cpu_snapshot`)."""
    busy, ours = cpu_snapshot()
    return max(0.0, (busy - before[0]) - (ours - before[1])) / max(wall_s, 1e-9)


def wait_for_quiet(limit_s: float, threshold: float = 0.15) -> None:
    """Wait (at most `limit_s`) until other processes use under `threshold` cores for 2 s."""
    if limit_s <= 0:
        return
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_snapshot()
        time.sleep(2.0)
        load = other_cores(before, 2.0)
        if load < threshold:
            return
        print(f"  waiting for a quiet machine: others use {load:.2f} cores")
    print(f"  the machine did not get quiet within {limit_s:.0f} s; measuring anyway")


def code_version() -> str:
    """The commit measured, and whether src/ had uncommitted changes (read-only git calls)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=BENCH_DIR, capture_output=True,
                                  text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" with uncommitted changes in src/" if git("status", "--porcelain", "--",
                                                               "../src") else "")


# ---------------------------------------------------------------- data and models


def ensure_dataset(out: Path, episodes: int, frames: int, seed: int) -> Path:
    """Synthetic 640x480 episodes built into a tpru dataset (cached: a marker says what)."""
    from tpru.cli import main as tpru_main
    from tpru.sources.synthetic import write_synthetic_episodes

    overrides = ["image.max_side=640"]
    spec = {"episodes": episodes, "frames": frames, "seed": seed, "size": list(FRAME_SIZE),
            "build": overrides}
    folder = out / "data"
    marker = folder / "marker.json"
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return folder / "dataset"
    shutil.rmtree(folder, ignore_errors=True)
    print(f"writing {episodes} episodes per scenario at {FRAME_SIZE[0]}x{FRAME_SIZE[1]} ...")
    write_synthetic_episodes(folder / "episodes", episodes=episodes, frames=frames, seed=seed,
                             size=FRAME_SIZE)
    code = tpru_main(["build", "--source", f"frames:{folder / 'episodes'}", "--out",
                      str(folder / "dataset"), "--seed", str(seed), "-q", *overrides])
    if code != 0:
        sys.exit(f"tpru build of {folder / 'episodes'} failed ({code})")
    marker.write_text(json.dumps(spec))
    return folder / "dataset"


def ensure_tiny(out: Path) -> Path:
    from tpru.models.tiny import make_tiny_qwen25_vl

    folder = out / "tiny-qwen25-vl"
    if not (folder / "config.json").is_file():
        make_tiny_qwen25_vl(folder, seed=0)
    return folder


def ensure_random_qwen25_vl(folder: Path, tiny: Path, size: str, seed: int, *,
                            min_pixels: int = 56 * 56, max_pixels: int,
                            device: str = "cuda") -> Path:
    """A random-init Qwen2.5-VL with the shapes of `size` (a key of `QWEN25_VL_SHAPES`),
    the tiny model's tokenizer and chat template, saved in bfloat16 (cached by a marker).

    The weights are drawn on `device` (seconds on a GPU, where a CPU takes minutes).
    Output-embedding rows past the tokenizer's vocabulary are zeroed, so that greedy
    decoding only picks tokens the tokenizer can decode.
    """
    import torch

    from tpru.models._torchvision import import_transformers
    from tpru.models.tiny import CHAT_TEMPLATE

    text, vision = QWEN25_VL_SHAPES[size]
    spec = {"text": text, "vision": vision, "seed": seed, "min_pixels": min_pixels,
            "max_pixels": max_pixels}
    marker = folder / "tpru-bench.json"
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    transformers = import_transformers()
    small = transformers.AutoConfig.from_pretrained(tiny)
    tokenizer = transformers.AutoProcessor.from_pretrained(tiny).tokenizer
    tokenizer.model_max_length = 32768
    pixels = {"min_pixels": min_pixels, "max_pixels": max_pixels}
    processor = transformers.Qwen2_5_VLProcessor(
        image_processor=transformers.Qwen2VLImageProcessor(**pixels),
        video_processor=transformers.Qwen2VLVideoProcessor(**pixels),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    config = transformers.Qwen2_5_VLConfig(
        text_config={**text, "bos_token_id": small.text_config.bos_token_id,
                     "eos_token_id": small.text_config.eos_token_id,
                     "pad_token_id": small.text_config.pad_token_id},
        vision_config=vision, tie_word_embeddings=text["tie_word_embeddings"],
        image_token_id=small.image_token_id, video_token_id=small.video_token_id,
        vision_start_token_id=small.vision_start_token_id,
        vision_end_token_id=small.vision_end_token_id)
    print(f"initialising a random {size}-sized Qwen2.5-VL into {folder} ...")
    where = torch.device(device)
    gpus = [where.index or 0] if where.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus), where:
        torch.manual_seed(seed)
        model = transformers.Qwen2_5_VLForConditionalGeneration._from_config(
            config, dtype=torch.bfloat16)
    with torch.no_grad():  # logits past the tokenizer's vocabulary: 0, below the argmax
        model.get_output_embeddings().weight[len(tokenizer):] = 0
    model.generation_config = transformers.GenerationConfig.from_pretrained(tiny)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    gc.collect()
    if gpus:
        torch.cuda.empty_cache()
    marker.write_text(json.dumps(spec))
    return folder
