"""The configuration of the model-in-the-loop stages.

Sections ``model``, ``judge`` and ``describe`` of `tpru.builder.config.BuildConfig`
(see docs/building.md, "Model stages"). All off by default. The ``audit``
section is the build command's (`tpru.eval.audit_config.AuditConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class StageModelConfig:
    """The vision-language model of the model-in-the-loop stages (``judge``, ``describe``).

    Attributes:
        name: a backend spec as ``tpru eval --model`` takes it (``hf:PATH_OR_HUB_ID``,
            ``vllm:...``, ``openai:MODEL``); None turns every model stage off.
        options: keyword options of the backend, e.g. ``{base_url:
            "http://localhost:8000/v1", concurrency: 16}`` for ``openai:`` or
            ``{dtype: bfloat16}`` for ``hf:``. A list as ``base_url`` (servers
            of the same model, one per GPU node) spreads every stage's requests
            over them (`tpru.models.openai_pool`).
        batch_size: requests per backend call; for ``openai:`` also the most
            requests in flight (raise it with ``options.concurrency``, and to at
            least servers x concurrency with several servers).
        max_images: frames shown per episode, spread evenly over its kept frames
            (first and last included).
        max_new_tokens: generation budget per answer.
        cache: folder of the answers, keyed by a hash of the model, the prompt and
            the images, so a rebuild never asks twice (default
            ``$TPRU_CACHE/model-calls``, else ``~/.cache/tpru/model-calls``).
    """

    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    max_images: int = 8
    max_new_tokens: int = 256
    cache: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("model.batch_size must be at least 1")
        if self.max_images < 2:
            raise ValueError("model.max_images must be at least 2")
        if self.max_new_tokens < 1:
            raise ValueError("model.max_new_tokens must be at least 1")


@dataclass(frozen=True)
class JudgeConfig:
    """The filter stage: the model judges whether an episode shows a clear process.

    Attributes:
        enabled: ask the model (``model.name``) about every episode that passed
            the frame filters; a "no" drops it as ``judge_rejected``.
        prompt: a prompt file (see docs/building.md for its placeholders);
            None: the built-in one.
        on_unclear: what happens to an episode whose answer is neither yes nor
            no, or whose request failed: ``keep`` it or ``drop`` it
            (``judge_unclear``). Counted either way.
    """

    enabled: bool = False
    prompt: str | None = None
    on_unclear: Literal["keep", "drop"] = "keep"


@dataclass(frozen=True)
class DescribeConfig:
    """The description stage: the model writes what the episode shows.

    Attributes:
        mode: ``never``; ``missing`` (describe the episodes whose source gave no
            description); ``always`` (replace every source description).
        prompt: the prompt file for the description and step captions; None:
            built-in.
        captions: also ask for one caption per shown frame (kept in each sample's
            ``meta.captions``).
        negatives: ask the model for a description that is plausible in the
            scenario but wrong for these images, used for ``mismatch`` negatives
            instead of another episode's description.
        negative_prompt: its prompt file; None: built-in.
        max_overlap: a model-written negative whose content words overlap the
            positive's by more than this share (Jaccard) is refused as too
            close (counted), and the negative comes from another episode.
        paraphrases: model paraphrases per description, used beside the
            template paraphrases (at ``text.paraphrase_rate``); 0: none.
        paraphrase_prompt: its prompt file; None: built-in.
    """

    mode: Literal["never", "missing", "always"] = "never"
    prompt: str | None = None
    captions: bool = True
    negatives: bool = True
    negative_prompt: str | None = None
    max_overlap: float = 0.6
    paraphrases: int = 0
    paraphrase_prompt: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_overlap <= 1.0:
            raise ValueError("describe.max_overlap must be between 0 and 1")
        if not 0 <= self.paraphrases <= 8:
            raise ValueError("describe.paraphrases must be between 0 and 8")
