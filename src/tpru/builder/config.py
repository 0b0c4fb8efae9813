"""The build's configuration: one frozen dataclass per stage.

Every field has a default that follows the paper where the paper says
something (4 frames, 4 candidates plus "None of the choices provided") and a
conservative choice otherwise. ``tpru build --print-config`` shows them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from tpru.builder import lengths
from tpru.builder.lengths import CandidatesSpec, FramesSpec
from tpru.builder.model_config import DescribeConfig, JudgeConfig, StageModelConfig
from tpru.builder.tasks import FORMULATORS, OrderTask

__all__ = ["BuildConfig", "DescribeConfig", "EmbedConfig", "FilterConfig", "ImageConfig",
           "JudgeConfig", "ProbeConfig", "SimConfig", "SplitConfig", "StageModelConfig",
           "TaskConfig", "TextConfig", "VideoConfig"]


@dataclass(frozen=True)
class FilterConfig:
    """Which frames and episodes are dropped, each drop counted by reason.

    Attributes:
        min_side: frames whose shorter side is below this many pixels are
            ``too_small``.
        blur_threshold: frames whose Laplacian variance (grey levels 0-255,
            measured at the analysis size, see ``ImageConfig.analysis_side``)
            is below this are ``blurred``; 0 turns the check off.
        dup_hamming: a frame is a ``near_duplicate`` of the previous kept frame
            when their 64-bit perceptual hashes differ in at most this many
            bits *and* their 16x16 thumbnails, grey and colour, differ by at most
            ``dup_pixel_diff`` (so a change of colour alone is a change).
        dup_pixel_diff: mean absolute thumbnail difference (0-1) for the above.
        min_change: an episode none of whose kept frames differs from the first
            by more than this (mean absolute grey or colour thumbnail difference,
            0-1) is ``static``.
        min_frames: episodes with fewer kept frames are ``too_few_frames``;
            never less than the shortest of ``TaskConfig.frames_per_sample``.
    """

    min_side: int = 64
    blur_threshold: float = 20.0
    dup_hamming: int = 4
    dup_pixel_diff: float = 0.01
    min_change: float = 0.005
    min_frames: int = 0

    def __post_init__(self) -> None:
        if self.min_side < 1:
            raise ValueError("filter.min_side must be at least 1")
        if not 0 <= self.dup_hamming <= 64:
            raise ValueError("filter.dup_hamming must be between 0 and 64")


@dataclass(frozen=True)
class ImageConfig:
    """How kept frames are stored in the dataset.

    Attributes:
        max_side: longer side of a stored image in pixels; larger frames are
            downscaled (aspect kept). A JPEG source already within bounds is
            stored byte for byte, so it is never compressed twice.
        format: ``jpeg`` (photos, renders) or ``png`` (lossless, e.g. GUI text).
        quality: JPEG quality when re-encoding.
        analysis_side: frames are measured (blur, hashes, embedding) reduced by
            the largest power of two that keeps their longer side at least
            this long (a 640x480 and a 320x240 frame are both measured at
            320x240); JPEGs are reduced while decoding, which is cheap.
    """

    max_side: int = 640
    format: Literal["jpeg", "png"] = "jpeg"
    quality: int = 90
    analysis_side: int = 256

    def __post_init__(self) -> None:
        if self.max_side < 16:
            raise ValueError("image.max_side must be at least 16")
        if not 1 <= self.quality <= 100:
            raise ValueError("image.quality must be between 1 and 100")


@dataclass(frozen=True)
class TextConfig:
    """Descriptions and question wording.

    Attributes:
        paraphrase_rate: share of samples whose description sentence uses a
            paraphrase template instead of the paper's wording.
        question_paraphrase_rate: the same for the question's wording.
        require_description: drop episodes without a description
            (``no_description``) instead of asking text-free questions.
    """

    paraphrase_rate: float = 0.5
    question_paraphrase_rate: float = 0.5
    require_description: bool = False

    def __post_init__(self) -> None:
        for name in ("paraphrase_rate", "question_paraphrase_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"text.{name} must be between 0 and 1")


@dataclass(frozen=True)
class TaskConfig:
    """How samples are formulated.

    Attributes:
        tasks: which of ordering, next_frame, prev_frame to make (the names
            of `tpru.builder.tasks.FORMULATORS`).
        frames_per_sample: frames in a sequence (paper: 4; 3 to 16): one
            number, a list of lengths each window draws among uniformly, or a
            mapping of length to weight (``{3: 1, 4: 2}``); see
            `tpru.builder.lengths`. ``meta.frames`` records each sample's.
        candidates: image or permutation choices besides "None of the choices
            provided" (paper: 4; 2 to 8): one number, or a mapping of task to
            number (``{ordering: 4, next_frame: 6, prev_frame: 6}``).
        windows_per_episode: sequences drawn from each episode; each yields
            one sample per task.
        ordering_forms: ``options`` (permutations as choices) and/or
            ``letters`` (answer a letter sequence such as "CABD"), used in turn.
        negative_rate: share of multiple-choice samples made negative.
        negative_kinds: ``mismatch`` (the text describes another process) and
            ``missing`` (the true frame is left out of the candidates).
        same_episode_distractors: at most this many distractors per sample
            come from the sample's own episode; the rest are nearest
            neighbours from other episodes of the same scenario and split.
        twins: splits in which every negative sample comes with its positive
            twin (the same window and candidates, answerable), linked through
            ``meta.twin``, as MuirBench pairs its unanswerable questions; a
            report then shows pair accuracy (both right). Default: the test
            split.
    """

    tasks: tuple[str, ...] = tuple(FORMULATORS)
    frames_per_sample: FramesSpec = 4
    candidates: CandidatesSpec = 4
    windows_per_episode: int = 1
    ordering_forms: tuple[Literal["options", "letters"], ...] = ("options", "letters")
    negative_rate: float = 0.3
    negative_kinds: tuple[Literal["mismatch", "missing"], ...] = ("mismatch", "missing")
    same_episode_distractors: int = 1
    twins: tuple[str, ...] = ("test",)

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in FORMULATORS]
        if unknown or not self.tasks:
            raise ValueError(f"tasks.tasks must be a non-empty list of {', '.join(FORMULATORS)}")
        shortest = self.shortest
        wrong_orders = math.factorial(shortest) - 1
        for task, count in self.candidate_counts.items():
            if isinstance(FORMULATORS[task], OrderTask) and count > wrong_orders:
                raise ValueError(f"tasks.candidates={count} for {task} needs more wrong orders "
                                 f"than {shortest} frames have ({wrong_orders})")
        if self.windows_per_episode < 1:
            raise ValueError("tasks.windows_per_episode must be at least 1")
        if not 0.0 <= self.negative_rate <= 1.0:
            raise ValueError("tasks.negative_rate must be between 0 and 1")
        if self.negative_rate > 0 and not self.negative_kinds:
            raise ValueError("tasks.negative_kinds is empty but negative_rate > 0")
        if not self.ordering_forms:
            raise ValueError("tasks.ordering_forms must name options and/or letters")

    @property
    def length_weights(self) -> dict[int, float]:
        """Window length -> weight, by length (one entry for a plain number)."""
        return lengths.length_weights(self.frames_per_sample)

    @property
    def shortest(self) -> int:
        """The fewest frames a window can have."""
        return min(self.length_weights)

    @property
    def candidate_counts(self) -> dict[str, int]:
        """Task -> candidates, for each task of `tasks`."""
        return lengths.candidate_counts(self.candidates, self.tasks, tuple(FORMULATORS))


@dataclass(frozen=True)
class EmbedConfig:
    """The image embedding used to find distractors.

    Attributes:
        name: ``thumb`` (a compact colour-and-edge feature computed on CPU while
            frames are read) or ``module:function`` taking a list of PIL images
            and returning an (n, d) float32 array.
    """

    name: str = "thumb"


@dataclass(frozen=True)
class SplitConfig:
    """Leak-free splits grouped by episode.

    Attributes:
        ratios: split name -> share of episodes, used as a proportion of their
            sum (the build warns when they do not sum to 1), in each scenario
            (see `tpru.builder.split.assign_splits`). Episodes joined by the
            ``join_min_frames`` rule go to one split whole, so a split can miss
            a scenario: the build warns, saying why (an error with --strict).
        near_dup_hamming: images whose perceptual hashes differ in at most this
            many bits, and whose thumbnails differ by at most
            ``FilterConfig.dup_pixel_diff``, count as near-duplicates.
        join_min_frames: two episodes are kept in one split when at least this
            many frames of each have an identical or near-duplicate frame in the
            other; fewer shared frames (one start screen that every recording of
            an app begins on) do not join them.
    """

    ratios: dict[str, float] = field(default_factory=lambda: {"train": 0.9, "test": 0.1})
    near_dup_hamming: int = 4
    join_min_frames: int = 2

    def __post_init__(self) -> None:
        if not self.ratios or any(v < 0 for v in self.ratios.values()):
            raise ValueError("split.ratios must map split names to non-negative shares")
        if sum(self.ratios.values()) <= 0:
            raise ValueError("split.ratios must not all be zero")
        if self.join_min_frames < 1:
            raise ValueError("split.join_min_frames must be at least 1")
        for name in self.ratios:
            if not name or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"split name {name!r} must be letters, digits, - or _")


@dataclass(frozen=True)
class ProbeConfig:
    """Model-free shortcut probes run on every finished build (see `tpru.builder.probes`).

    Attributes:
        max_lift: the build fails when a probe's accuracy exceeds the accuracy
            its answers would have by chance by more than this (0-1) and the
            excess is significant (chance below the probe's 95% interval);
            null only reports.
        min_samples: a task with fewer choice samples than this is reported
            but never fails the build (too few items to tell a leak from luck).
    """

    max_lift: float | None = 0.05
    min_samples: int = 100

    def __post_init__(self) -> None:
        if self.max_lift is not None and not 0.0 <= self.max_lift <= 1.0:
            raise ValueError("probes.max_lift must be between 0 and 1, or null")
        if self.min_samples < 1:
            raise ValueError("probes.min_samples must be at least 1")


@dataclass(frozen=True)
class VideoConfig:
    """How ``video:`` sources pick frames.

    Attributes:
        mode: ``time`` (one frame every 1/fps seconds) or ``keyframes`` (a
            frame whenever the picture has changed enough since the last one).
        fps: frames per second taken (``time``) or scanned (``keyframes``).
        change_threshold: in ``keyframes`` mode, the mean absolute thumbnail
            difference (0-1) from the last kept frame that keeps a candidate.
        max_frames: at most this many frames per video, spread evenly.
    """

    mode: Literal["time", "keyframes"] = "time"
    fps: float = 1.0
    change_threshold: float = 0.03
    max_frames: int = 64

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError("video.fps must be positive")
        if not 0 <= self.change_threshold <= 1:
            raise ValueError("video.change_threshold must be between 0 and 1")
        if self.max_frames < 1:
            raise ValueError("video.max_frames must be at least 1")


@dataclass(frozen=True)
class SimConfig:
    """How ``sim:`` sources (the built-in simulators) make episodes.

    A source is named ``sim:NAME`` (robot, lego, gui, nav) or ``sim:NAME:TASK,TASK``
    to render only some task types.

    Attributes:
        episodes: episodes per simulator.
        frames: frames (steps) per episode.
        seed: the first seed; seeds seed, seed + 1, ... are rendered in turn, and a
            seed whose render fails or repeats a description is skipped (counted)
            and the next one used.
        size: frame width and height in pixels.
        out: folder the rendered frames are written to (default: a cache
            folder under ~/.cache/tpru/sim).
    """

    episodes: int = 24
    frames: int = 6
    seed: int = 0
    size: tuple[int, int] = (320, 240)
    out: str | None = None

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.frames < 2:
            raise ValueError("sim.episodes must be at least 1 and sim.frames at least 2")
        if self.seed < 0:
            raise ValueError(f"sim.seed must be 0 or more, got {self.seed}")
        if len(self.size) != 2 or min(self.size) < 16:
            raise ValueError("sim.size must be [width, height], each at least 16")


@dataclass(frozen=True)
class RayConfig:
    """Where the Ray engine runs (``engine: ray``; see docs/scaling.md).

    Attributes:
        address: a running cluster's head, ``HOST:PORT`` (``ray start --head``
            prints it), ``auto`` or ``ray://HOST:PORT``; None starts Ray on this
            machine with ``workers`` CPUs.
        frames_per_task: about how many frames one Ray task reads (whole episodes
            are grouped until they reach it): larger hides a task's overhead,
            smaller spreads a small build over more CPUs. The output does not
            depend on it.
    """

    address: str | None = None
    frames_per_task: int = 128

    def __post_init__(self) -> None:
        if self.frames_per_task < 1:
            raise ValueError("ray.frames_per_task must be at least 1")


@dataclass(frozen=True)
class BuildConfig:
    """Everything `tpru build` needs; written into ``build.json``.

    Attributes:
        sources: ``KIND:PATH`` names, read in order.
        out: the dataset folder to write (``--out``; default ``dataset``, in the
            current folder).
        seed: every random choice derives from it.
        workers: processes reading and measuring frames in pass 1 and making the
            samples in pass 2 (with ``engine: local``, or the CPUs of a Ray started on
            this machine).
        engine: ``local`` (processes on this machine) or ``ray`` (the tasks of
            pass 1 and of pass 2's samples on a Ray cluster,
            `tpru.builder.ray_engine`); the output is the same either way.
        ray: the Ray engine's cluster.
        strict: stop at the first bad input instead of skipping it.
        scenario: overrides the scenario of every episode when set.
        source_options: options per source kind, passed to its reader, e.g.
            ``{"gui-odyssey": {"split_file": "random_split.json", "split":
            "train"}}`` (``video`` and ``sim`` have their own sections).
        model, judge, describe: the model-in-the-loop stages (off by default).
        audit: the settings of the text-only shortcut audit that ``tpru build`` runs
            on the finished dataset (`tpru.eval.audit_config.AuditConfig`, loaded
            and checked by the build command, which puts them here resolved). The
            build only records them, in ``build.json`` and the ``--resume``
            fingerprint; empty: none given.
    """

    sources: tuple[str, ...] = ()
    out: str = "dataset"
    seed: int = 0
    workers: int = 1
    engine: Literal["local", "ray"] = "local"
    ray: RayConfig = field(default_factory=RayConfig)
    strict: bool = False
    scenario: str | None = None
    filter: FilterConfig = field(default_factory=FilterConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    text: TextConfig = field(default_factory=TextConfig)
    tasks: TaskConfig = field(default_factory=TaskConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    source_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: StageModelConfig = field(default_factory=StageModelConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    describe: DescribeConfig = field(default_factory=DescribeConfig)
    audit: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.seed < 0:  # numpy refuses it, at the audit, after the dataset is written
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        if (self.judge.enabled or self.describe.mode != "never") and not self.model.name:
            raise ValueError("judge.enabled or describe.mode needs a model: set model.name "
                             "(e.g. model.name=hf:Qwen/Qwen2.5-VL-72B-Instruct)")
        audit_split = self.audit.get("split")
        if audit_split is not None and audit_split not in self.split.ratios:
            raise ValueError(f"audit.split {audit_split!r} is not one of the build's "
                             f"splits ({', '.join(self.split.ratios)})")

    @property
    def uses_model(self) -> bool:
        """Whether a model-in-the-loop stage (judge, describe) runs."""
        return self.judge.enabled or self.describe.mode != "never"

    @property
    def min_frames(self) -> int:
        """Fewest kept frames an episode needs."""
        return max(self.filter.min_frames, self.tasks.shortest)
