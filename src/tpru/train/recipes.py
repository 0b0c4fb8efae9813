"""EasyR1 recipes: the paper's GRPO settings as data, and the checks a run's config must pass.

A recipe is a YAML file of EasyR1 config sections (``data``, ``algorithm``,
``worker``, ``trainer``) with EasyR1's own key names, so that every value can
be looked up in EasyR1's documentation and overridden the way EasyR1 users
already do (``worker.rollout.n=8``). The paper's recipes ship as
``configs/train/easyr1_tpru_3b.yaml`` and ``easyr1_tpru_7b.yaml`` and are
named ``3b`` and ``7b``; any other recipe is a path.

A recipe holds no paths of a particular run: tpru fills in the data files,
format prompt, reward function and node and GPU counts when it writes a run
folder. The checks here catch, before a job reaches a cluster, what EasyR1
would only report after loading the model, or never:

- the three defects of the TPRU release's configs (`check_run_files`): a
  format prompt and a reward function swapped, a format prompt file that does
  not exist (EasyR1 prints a line and trains without the prompt), and a reward
  file named without ``:function`` (EasyR1 then calls ``main``);
- EasyR1's batch arithmetic (`check_batches`): the divisibility rules its
  trainer and workers enforce, and a train split with no full batch;
- prompts longer than ``data.max_prompt_length`` once their images are
  counted (`measure_prompts`), which EasyR1 drops or cuts ("image features
  and image tokens do not match"), and more images than vLLM is allowed.

Example:
    >>> config = load_recipe("7b")
    >>> get(config, "worker.rollout.n"), get(config, "data.max_pixels")
    (5, 36864)
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from tpru.config import ConfigError, read_yaml
from tpru.dataset import Dataset
from tpru.diagnostics import InputError
from tpru.export.common import make_formatter, render_prompt
from tpru.schema import IMAGE_PLACEHOLDER, Sample

log = logging.getLogger("tpru.train")

RECIPES: dict[str, str] = {"3b": "easyr1_tpru_3b.yaml", "7b": "easyr1_tpru_7b.yaml"}
"""Recipe name -> file in the source tree's ``configs/train``."""

RECIPE_DIR = Path(__file__).resolve().parents[3] / "configs" / "train"
"""Where the named recipes live: ``configs/train`` of the tpru source tree."""

SECTIONS = ("data", "algorithm", "worker", "trainer")
"""The top-level sections of an EasyR1 config (its ``PPOConfig``)."""

EASYR1_DEFAULTS: dict[str, Any] = {
    "algorithm.adv_estimator": "grpo", "data.rollout_batch_size": 512,
    "data.mini_rollout_batch_size": None, "data.max_prompt_length": 512,
    "data.min_pixels": 262144, "data.max_pixels": 4194304,
    "worker.actor.global_batch_size": 256, "worker.actor.ulysses_size": 1,
    "worker.actor.micro_batch_size_per_device_for_update": 4,
    "worker.actor.micro_batch_size_per_device_for_experience": 16,
    "worker.actor.fsdp.enable_cpu_offload": False, "worker.rollout.n": 1,
    "worker.rollout.tensor_parallel_size": 2, "worker.rollout.limit_images": 0,
}
"""EasyR1's defaults for the keys the checks read, used when a config leaves them out."""


def recipe_path(recipe: str | os.PathLike[str]) -> Path:
    """The YAML file of `recipe`: a name in `RECIPES`, or a path."""
    name = str(recipe)
    if name in RECIPES:
        path = RECIPE_DIR / RECIPES[name]
        if not path.is_file():
            raise InputError(f"recipe {name!r}: {path} not found; the named recipes ship with "
                             "the tpru source tree (configs/train), pass --recipe PATH instead")
        return path
    path = Path(recipe)
    if not path.is_file():
        raise InputError(f"recipe {name!r} is neither a recipe name "
                         f"({', '.join(sorted(RECIPES))}) nor a YAML file")
    return path


def load_recipe(recipe: str | os.PathLike[str]) -> dict[str, Any]:
    """The EasyR1 config sections of `recipe` (a name in `RECIPES` or a YAML path).

    Only the top-level sections are checked here; EasyR1 refuses an unknown
    key below them when it loads the config.
    """
    path = recipe_path(recipe)
    try:
        data = read_yaml(path)
    except ConfigError as err:
        raise InputError(str(err)) from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise InputError(f"{path}: unknown section {unknown[0]!r} "
                         f"(an EasyR1 config has {', '.join(SECTIONS)})")
    for section, value in data.items():
        if not isinstance(value, Mapping):
            raise InputError(f"{path}: section {section!r} is not a mapping")
    return copy.deepcopy(data)


def get(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The value at dotted `key`, else `default` (else EasyR1's default for the checked keys)."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default if default is not None else EASYR1_DEFAULTS.get(key)
        node = node[part]
    return node


def put(config: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted `key` to `value`, creating the sections on the way."""
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def integer(config: Mapping[str, Any], key: str) -> int:
    """The integer at `key`, with a one-line error naming the key if it is not one."""
    value = get(config, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{key}: expected an integer, got {value!r}")
    return value


def check_batches(config: Mapping[str, Any], *, train_samples: int) -> None:
    """Refuse batch sizes EasyR1 would reject at start-up, or that leave no full batch.

    The rules are those of EasyR1's trainer and FSDP workers: the rollout
    batch divides into actor updates, the samples of a step divide into
    micro-batches, every GPU gets a share of each update, the rollout's tensor
    parallel size divides the GPUs, and GRPO samples more than one response
    per prompt. The train loader drops an incomplete last batch, so a split
    smaller than one batch would train on nothing.
    """
    rollout = integer(config, "data.rollout_batch_size")
    mini = get(config, "data.mini_rollout_batch_size")
    loader_batch = integer(config, "data.mini_rollout_batch_size") if mini is not None else rollout
    n = integer(config, "worker.rollout.n")
    update = integer(config, "worker.actor.global_batch_size")
    micro_update = integer(config, "worker.actor.micro_batch_size_per_device_for_update")
    micro_experience = integer(config, "worker.actor.micro_batch_size_per_device_for_experience")
    ulysses = integer(config, "worker.actor.ulysses_size")
    tensor_parallel = integer(config, "worker.rollout.tensor_parallel_size")
    gpus = integer(config, "trainer.nnodes") * integer(config, "trainer.n_gpus_per_node")
    problems = []
    if min(rollout, loader_batch, n, update, micro_update, micro_experience, ulysses,
           tensor_parallel, gpus) < 1:
        problems.append("batch sizes, rollout.n, parallel sizes and GPU counts must be positive")
    elif rollout % update:
        problems.append(f"data.rollout_batch_size {rollout} is not a multiple of "
                        f"worker.actor.global_batch_size {update}")
    elif rollout * n % micro_experience:
        problems.append(f"data.rollout_batch_size x worker.rollout.n = {rollout * n} is not a "
                        f"multiple of micro_batch_size_per_device_for_experience "
                        f"{micro_experience}")
    else:
        per_device = update * n // max(1, gpus // ulysses)
        if per_device == 0:
            problems.append(f"an update of {update * n} samples is smaller than the {gpus} GPUs")
        elif per_device % micro_update:
            problems.append(f"{per_device} samples per GPU per update is not a multiple of "
                            f"micro_batch_size_per_device_for_update {micro_update}")
        elif get(config, "worker.actor.fsdp.enable_cpu_offload") and per_device != micro_update:
            problems.append("worker.actor.fsdp.enable_cpu_offload needs one micro-batch per "
                            f"update ({per_device} samples per GPU, micro-batches of "
                            f"{micro_update})")
    if gpus >= 1 and tensor_parallel >= 1 and gpus % tensor_parallel:
        problems.append(f"{gpus} GPUs do not divide into worker.rollout.tensor_parallel_size "
                        f"{tensor_parallel}")
    if get(config, "algorithm.adv_estimator") in ("grpo", "rloo") and n < 2:
        problems.append("GRPO needs worker.rollout.n > 1 responses per prompt")
    if loader_batch >= 1 and train_samples < loader_batch:
        problems.append(f"the train split has {train_samples} samples, fewer than one batch of "
                        f"{loader_batch} (data.rollout_batch_size), so EasyR1 would train on "
                        "nothing")
    if problems:
        raise InputError("EasyR1 would refuse this config: " + "; ".join(problems))


def check_run_files(config: Mapping[str, Any], run_dir: Path) -> None:
    """Refuse the TPRU release's config defects, with paths resolved from `run_dir`.

    EasyR1 resolves relative paths from the folder it is started in, which is
    the run folder (launch.sh changes into it).
    """
    prompt = get(config, "data.format_prompt")
    reward = get(config, "worker.reward.reward_function")
    if not isinstance(prompt, str) or not prompt:
        raise InputError("data.format_prompt is not set: the model would never be told to "
                         "answer in <think>/<answer> tags")
    if not isinstance(reward, str) or not reward:
        raise InputError("worker.reward.reward_function is not set")
    if _python_file(prompt) or reward.endswith((".jinja", ".j2", ".txt")):
        raise InputError(f"data.format_prompt ({prompt}) and worker.reward.reward_function "
                         f"({reward}) are swapped")
    prompt_file = _resolve(prompt, run_dir)
    if not prompt_file.is_file():
        raise InputError(f"data.format_prompt: {prompt} does not exist in {run_dir}; EasyR1 "
                         "would train without the prompt (it only prints 'not found')")
    if "content" not in prompt_file.read_text(encoding="utf-8"):
        raise InputError(f"data.format_prompt: {prompt_file} never uses {{{{ content }}}}")
    path, sep, function = reward.rpartition(":")
    if not sep or not function or not _python_file(path):
        raise InputError(f"worker.reward.reward_function: {reward!r} is not PATH.py:FUNCTION; "
                         "without ':FUNCTION' EasyR1 calls a function named main")
    reward_file = _resolve(path, run_dir)
    if not reward_file.is_file():
        raise InputError(f"worker.reward.reward_function: {path} does not exist in {run_dir}")
    defined = top_level_names(reward_file)
    if function not in defined:
        raise InputError(f"worker.reward.reward_function: {reward_file} has no function "
                         f"{function!r}")
    for key in ("data.train_files", "data.val_files"):
        value = str(get(config, key) or "")
        local = _resolve(value.partition("@")[0], run_dir)
        if value.startswith(("./", "../", "/")) and not local.exists():
            raise InputError(f"{key}: {value} does not exist in {run_dir}")


def top_level_names(path: Path) -> set[str]:
    """Names a Python file defines at its top level (functions, classes, assignments)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as err:
        raise InputError(f"{path}: not valid Python ({err.msg}, line {err.lineno})") from None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _python_file(path: str) -> bool:
    return path.partition(":")[0].endswith(".py")


def _resolve(path: str, run_dir: Path) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else run_dir / candidate


# ---------------------------------------------------------------- prompt length

PATCH = 28
"""Qwen2.5-VL: one visual token per 28 x 28 pixels (14-pixel patches merged 2 x 2)."""

PROCESSOR_PIXELS = (56 * 56, 28 * 28 * 1280)
"""The pixel bounds of Qwen2.5-VL's image processor, after EasyR1's own resize."""

CHARS_PER_TOKEN = 3
"""ASCII characters per token in the estimate: Qwen2's tokenizer averages about 4 on
English, so 3 leaves a margin; every other character counts as one token."""

TEMPLATE_TOKENS = 32
"""Tokens of the chat template around a prompt (system turn, role markers; 19 for
Qwen2.5-VL's template), with a margin, in the estimate."""

DEFAULT_SCAFFOLD = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n")
"""Qwen2.5-VL's chat template around one user turn, counted exactly with a tokenizer."""


def image_tokens(width: int, height: int, min_pixels: int | None, max_pixels: int | None,
                 processor_pixels: tuple[int, int] = PROCESSOR_PIXELS) -> int:
    """Visual tokens of one image in EasyR1 with Qwen2.5-VL, start and end markers included.

    EasyR1 first scales the image into ``[min_pixels, max_pixels]`` (the
    data config), truncating the sides; Qwen2.5-VL's processor then rounds
    each side to a multiple of 28 within its own bounds; each 28 x 28 block
    is one token, between a vision-start and a vision-end token.
    """
    if max_pixels is not None and width * height > max_pixels:
        scale = (max_pixels / (width * height)) ** 0.5
        width, height = int(width * scale), int(height * scale)
    if min_pixels is not None and width * height < min_pixels:
        scale = (min_pixels / (width * height)) ** 0.5
        width, height = int(width * scale), int(height * scale)
    low, high = processor_pixels
    h_bar, w_bar = round(height / PATCH) * PATCH, round(width / PATCH) * PATCH
    if h_bar * w_bar > high:
        beta = (height * width / high) ** 0.5
        h_bar = max(PATCH, math.floor(height / beta / PATCH) * PATCH)
        w_bar = max(PATCH, math.floor(width / beta / PATCH) * PATCH)
    elif h_bar * w_bar < low:
        beta = (low / (height * width)) ** 0.5
        h_bar, w_bar = (math.ceil(height * beta / PATCH) * PATCH,
                        math.ceil(width * beta / PATCH) * PATCH)
    return (h_bar // PATCH) * (w_bar // PATCH) + 2


def estimate_text_tokens(text: str) -> int:
    """Tokens of `text` without a tokenizer: ASCII / `CHARS_PER_TOKEN`, other characters 1 each."""
    ascii_chars = sum(1 for c in text if ord(c) < 128)
    return math.ceil(ascii_chars / CHARS_PER_TOKEN) + len(text) - ascii_chars


@dataclass(frozen=True)
class PromptBudget:
    """The longest prompt of a dataset, in tokens, against the config's limits."""

    limit: int
    longest: int
    sample_id: str
    split: str
    images: int
    image_tokens: int
    text_tokens: int
    max_images: int
    max_images_id: str
    limit_images: int
    counter: str

    def check(self) -> None:
        """Refuse a prompt over ``data.max_prompt_length`` or over the images per prompt."""
        if self.longest > self.limit:
            raise InputError(
                f"sample {self.sample_id!r} ({self.split}) needs about {self.longest} prompt "
                f"tokens ({self.images} images: {self.image_tokens}, text: {self.text_tokens}) "
                f"but data.max_prompt_length is {self.limit}; EasyR1 would drop or cut it "
                "('image features and image tokens do not match'): raise "
                "data.max_prompt_length or lower data.max_pixels")
        if 0 < self.limit_images < self.max_images:
            raise InputError(f"sample {self.max_images_id!r} has {self.max_images} images but "
                             f"worker.rollout.limit_images is {self.limit_images}; raise it")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def measure_prompts(dataset: Dataset, splits: Sequence[str], template: str,
                    config: Mapping[str, Any]) -> PromptBudget:
    """Measure every sample's prompt as EasyR1 would build it for the model in `config`.

    Image tokens are exact for Qwen2.5-VL given each image's size (read from
    its header). Text is counted with the model's tokenizer when the model is
    a local folder with a ``tokenizer.json`` (its processor's pixel bounds
    are used too), else estimated with `estimate_text_tokens` plus
    `TEMPLATE_TOKENS`.
    """
    model = Path(str(get(config, "worker.actor.model.model_path")))
    count_text, scaffold, counter, processor_pixels = _text_counter(model)
    formatter = make_formatter(template.strip())  # EasyR1 strips the template before use
    min_pixels, max_pixels = get(config, "data.min_pixels"), get(config, "data.max_pixels")
    sizes: dict[str, int] = {}
    longest: tuple[int, int, int, Sample, str] | None = None  # total, visual, text, sample, split
    most: Sample | None = None
    for split in splits:
        for sample in dataset.samples(split):
            pieces = formatter(render_prompt(sample)).split(IMAGE_PLACEHOLDER)
            text = sum(count_text(piece) for piece in pieces if piece) + scaffold
            visual = 0
            for relative in sample.images:
                if relative not in sizes:
                    width, height = _image_size(dataset.image_path(relative))
                    sizes[relative] = image_tokens(width, height, min_pixels, max_pixels,
                                                   processor_pixels)
                visual += sizes[relative]
            if longest is None or text + visual > longest[0]:
                longest = (text + visual, visual, text, sample, split)
            if most is None or len(sample.images) > len(most.images):
                most = sample
    if longest is None or most is None:
        raise InputError(f"{dataset.root}: no samples in {', '.join(splits)}")
    total, visual, text, sample, split = longest
    return PromptBudget(limit=integer(config, "data.max_prompt_length"), longest=total,
                        sample_id=sample.id, split=split, images=len(sample.images),
                        image_tokens=visual, text_tokens=text, max_images=len(most.images),
                        max_images_id=most.id,
                        limit_images=integer(config, "worker.rollout.limit_images"),
                        counter=counter)


def _text_counter(model: Path) -> tuple[Callable[[str], int], int, str,
                                         tuple[int, int]]:
    """Count text with the local model's tokenizer if there is one, else estimate."""
    tokenizer_file = model / "tokenizer.json"
    if tokenizer_file.is_file():
        try:
            from tokenizers import Tokenizer
        except ImportError:
            log.info("tokenizers is not installed: estimating prompt lengths")
        else:
            tokenizer = Tokenizer.from_file(str(tokenizer_file))

            def count(text: str) -> int:
                return len(tokenizer.encode(text, add_special_tokens=False).ids)

            return (count, count(DEFAULT_SCAFFOLD), f"the tokenizer of {model}",
                    _processor_pixels(model))
    return (estimate_text_tokens, TEMPLATE_TOKENS,
            f"an estimate of {CHARS_PER_TOKEN} ASCII characters per token", PROCESSOR_PIXELS)


def _processor_pixels(model: Path) -> tuple[int, int]:
    """A local model's image processor pixel bounds, else Qwen2.5-VL's.

    Hub models keep them in ``preprocessor_config.json``; transformers 5 saves
    ``processor_config.json`` with an ``image_processor`` section.
    """
    for name, section in (("preprocessor_config.json", None),
                          ("processor_config.json", "image_processor")):
        try:
            data = json.loads((model / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        data = data.get(section) or {} if section else data
        size = data.get("size") or {}
        low = data.get("min_pixels") or size.get("shortest_edge") or PROCESSOR_PIXELS[0]
        high = data.get("max_pixels") or size.get("longest_edge") or PROCESSOR_PIXELS[1]
        return int(low), int(high)
    return PROCESSOR_PIXELS


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read image ({err})") from None
