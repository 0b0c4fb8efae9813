"""The settings of an evaluation run: `EvalConfig`, what ``tpru eval`` loads and writes.

``tpru eval [CONFIG.yaml] [key=value ...]`` loads one from a YAML file and
``key=value`` overrides (`tpru.config.load`: every key and type checked at
load), then its flags (``--limit``, ``--seed``, ...) on top. The run writes
the config it ran with, defaults filled in, as ``eval.yaml`` in the run
folder (`write_eval_config`), so that::

    tpru eval RUN/eval.yaml --model MODEL --bench BENCH --out NEW_RUN

repeats the run. The model, its options and the benchmark are not part of it:
they name what is evaluated, not how (``run.json`` records them).

Example:
    >>> from tpru.config import apply_overrides, load
    >>> config = load(EvalConfig, apply_overrides({"limit": 10}, ["seed=3"]))
    >>> config.limit, config.seed, config.batch_size
    (10, 3, 8)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tpru.config import ConfigError, to_dict
from tpru.eval.prompts import PROMPTS
from tpru.files import write_text_atomic

CONFIG_FILE = "eval.yaml"
"""The run's `EvalConfig`, written into every run folder."""

STOP_AFTER_FAILURES = 16
"""Items in a row that may fail in the backend before a run stops (at least one batch)."""


@dataclass(frozen=True)
class EvalConfig:
    """What decides an evaluation run's results (``tpru eval``; `tpru.eval.runner.run_eval`).

    Attributes:
        prompt: a name in `tpru.eval.prompts.PROMPTS`; None: the benchmark's own.
        split: the split the benchmark is read with (``tpru eval`` passes it to
            `tpru.eval.benchmarks.load_benchmark`): a name, ``all`` for every
            split, or None for the benchmark's default (a dataset folder's
            ``test``). The runner scores the benchmark it is given and
            records that benchmark's split.
        limit: run only the first `limit` items (benchmark order); None: all.
        batch_size: requests per backend call and per flush of results.
        seed: the seed each item's request seed is drawn from
            (`tpru.eval.runner.request_seed`).
        max_new_tokens: the generation budget per answer.
        temperature: sampling temperature; 0 is greedy.
        stop_after_failures: stop once this many items in a row (or a whole
            batch, if larger) failed in the backend; None never stops.
    """

    prompt: str | None = None
    split: str | None = None
    limit: int | None = None
    batch_size: int = 8
    seed: int = 0
    max_new_tokens: int = 1024
    temperature: float = 0.0
    stop_after_failures: int | None = STOP_AFTER_FAILURES

    def __post_init__(self) -> None:
        # ConfigError, not a bare ValueError: `dataclasses.replace` raises it as it is, and
        # the command line prints it as one line.
        if self.prompt is not None and self.prompt not in PROMPTS:
            raise ConfigError(f"unknown prompt {self.prompt!r} "
                              f"(prompts: {', '.join(PROMPTS)})")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be 1 or more, got {self.limit}")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ConfigError(f"batch size and max new tokens must be 1 or more, got "
                              f"{self.batch_size} and {self.max_new_tokens}")
        if self.seed < 0:
            raise ConfigError(f"seed must be 0 or more, got {self.seed}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be 0 or more, got {self.temperature:g}")
        if self.stop_after_failures is not None and self.stop_after_failures < 1:
            raise ConfigError(f"stop_after_failures must be 1 or more (or null: never stop), "
                              f"got {self.stop_after_failures}")


def write_eval_config(folder: Path, config: EvalConfig) -> Path:
    """Write `config` as `CONFIG_FILE` in the run folder `folder`; return its path."""
    import yaml

    path = folder / CONFIG_FILE
    header = ("# The settings of this run (tpru eval). Repeat it with:\n"
              f"#   tpru eval RUN/{CONFIG_FILE} --model MODEL --bench BENCH --out NEW_RUN\n"
              "# (the model and the benchmark it ran are in run.json)\n")
    write_text_atomic(path, header + yaml.safe_dump(to_dict(config), sort_keys=False))
    return path
