"""GRPO on samples of 3, 5 and 8 images in one batch, and a curriculum TRL keeps in order.

The tiny offline Qwen2.5-VL trains for real (TRL's GRPOTrainer on the CPU). The
batched forward that scores completions must give every sample the log
probabilities it gets alone: left-padded prompts of different lengths, a
different number of images per prompt, completions of different lengths.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from length_fixtures import frame_images, ordering, write_dataset
from tpru.diagnostics import InputError
from tpru.train.config import DataConfig, GRPOTrainConfig, ModelConfig, load_train_config
from tpru.train.data import open_train_dataset
from tpru.train.grpo import train_grpo

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "train"

CURRICULUM = {"a3": 0.1, "b5": 0.2, "c8": 0.3, "d8": 0.4, "e3": 0.5, "f5": 0.6}
"""Sample id (letter, frames) -> difficulty: easy to hard, each triple holds 3, 5 and 8 frames."""

RECORDER = '''
import json


def record_ids(completions, id, **columns):
    """Append the ids each reward call sees to a file; reward the share of capital letters."""
    with open({path!r}, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(list(id)) + "\\n")
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [sum(ch.isupper() for ch in t) / max(len(t), 1) for t in texts]
'''


@pytest.fixture(scope="module")
def three_lengths(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A train split of six ordering samples of 3, 5 or 8 frames, listed out of curriculum
    order (by id, descending)."""
    root = tmp_path_factory.mktemp("three-lengths") / "dataset"
    frames = frame_images(root, range(8))
    samples = []
    for sample_id in sorted(CURRICULUM, reverse=True):
        base = ordering(int(sample_id[1:]), frames, scores=True)
        meta = {**base.meta, "difficulty": {**base.meta["difficulty"],
                                            "score": CURRICULUM[sample_id]}}
        samples.append(dataclasses.replace(base, id=sample_id, meta=meta))
    written: Path = write_dataset(root, {"train": samples})
    return written


def test_a_curriculum_is_sorted_and_refused_without_scores(three_lengths: Path,
                                                           tmp_path: Path) -> None:
    config = DataConfig(path=str(three_lengths), order="curriculum")
    dataset = open_train_dataset(config, tmp_path / "run", seed=0)
    assert dataset["id"] == list(CURRICULUM)
    assert [len(images) for images in dataset["images"]] == [3, 5, 8, 8, 3, 5]
    shuffled = open_train_dataset(DataConfig(path=str(three_lengths)), tmp_path / "run")
    assert shuffled["id"] == sorted(CURRICULUM, reverse=True)  # the trainer's sampler shuffles
    older = tmp_path / "older-export"  # a TRL export from before the difficulty column
    shuffled.remove_columns("difficulty").save_to_disk(str(older))
    with pytest.raises(InputError, match=r"older-export \(split train\): data.order=curriculum "
                                         r"needs a difficulty column"):
        open_train_dataset(DataConfig(path=str(older), order="curriculum"), tmp_path / "other")


@pytest.mark.slow
def test_grpo_trains_on_mixed_lengths_in_curriculum_order(
        tiny_model_dir: Path, three_lengths: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen.jsonl"
    reward = tmp_path / "recorder.py"
    reward.write_text(RECORDER.format(path=str(seen)), encoding="utf-8")
    config = load_train_config(GRPOTrainConfig, RECIPES / "grpo_tiny.yaml", [
        f"model.name={tiny_model_dir}", f"data.path={three_lengths}", "data.limit=6",
        "data.order=curriculum", f"train.output_dir={tmp_path / 'run'}", "train.max_steps=2",
        "train.per_device_batch_size=6", "train.weight_decay=0.0", "model.max_pixels=6272",
        f"rewards=[{{name: '{reward}:record_ids'}}]"])
    result = train_grpo(config, show_progress=False)
    assert result.steps == 2
    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    batches = [json.loads(line) for line in seen.read_text(encoding="utf-8").splitlines()]
    # one batch per step: 3 prompts of 3, 5 and 8 images, each twice (the group), in the
    # curriculum's order: TRL's sampler did not shuffle them
    assert batches == [["a3", "a3", "b5", "b5", "c8", "c8"], ["d8", "d8", "e3", "e3", "f5", "f5"]]


def _trainer(model_dir: Path, dataset: Any, out: Path) -> Any:
    from tpru.models._torchvision import import_transformers

    transformers = import_transformers()
    import torch
    from trl.trainer.grpo_config import GRPOConfig
    from trl.trainer.grpo_trainer import GRPOTrainer

    from tpru.train.common import load_processor

    def zero(completions: list[Any], **columns: Any) -> list[float | None]:
        return [0.0] * len(completions)

    processor = load_processor(ModelConfig(name=str(model_dir), dtype="float32",
                                           min_pixels=3136, max_pixels=6272))
    model = transformers.Qwen2_5_VLForConditionalGeneration.from_pretrained(
        str(model_dir), dtype=torch.float32)
    args = GRPOConfig(output_dir=str(out), use_cpu=True, per_device_train_batch_size=6,
                      num_generations=2, max_completion_length=8, report_to="none",
                      bf16=False, disable_tqdm=True)
    return GRPOTrainer(model=model, reward_funcs=[zero], args=args, train_dataset=dataset,
                       processing_class=processor)


def _inputs(trainer: Any, rows: list[dict[str, Any]],
            completions: list[list[int]]) -> tuple[Any, ...]:
    """What GRPOTrainer feeds its scoring forward: prompts rendered and left-padded by the
    processor with their images, completions right-padded, mm_token_type_ids extended."""
    import torch
    from trl.data_utils import apply_chat_template, prepare_multimodal_messages

    processor = trainer.processing_class
    texts = [apply_chat_template({"prompt": prepare_multimodal_messages(
        row["prompt"], images=row["images"])}, processor)["prompt"] for row in rows]
    encoded = processor(images=[row["images"] for row in rows], text=texts, padding=True,
                        return_tensors="pt")
    width = max(map(len, completions))
    pad = processor.tokenizer.pad_token_id
    completion_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in completions])
    completion_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids))
                                    for ids in completions])
    forward = {k: v for k, v in encoded.items() if k not in ("input_ids", "attention_mask")}
    if "mm_token_type_ids" in forward:
        forward["mm_token_type_ids"] = torch.cat(
            [forward["mm_token_type_ids"], torch.zeros_like(completion_ids)], dim=1)
    ids = torch.cat([encoded["input_ids"], completion_ids], dim=1)
    mask = torch.cat([encoded["attention_mask"], completion_mask], dim=1)
    return ids, mask, width, forward


@pytest.mark.slow
def test_the_batched_forward_scores_each_sample_as_alone(
        tiny_model_dir: Path, three_lengths: Path, tmp_path: Path) -> None:
    import torch

    data = open_train_dataset(DataConfig(path=str(three_lengths), order="curriculum"),
                              tmp_path / "run", seed=0)
    trainer = _trainer(tiny_model_dir, data, tmp_path / "trainer")
    rows = [data[i] for i in range(3)]
    assert [len(row["images"]) for row in rows] == [3, 5, 8]
    generator = torch.Generator().manual_seed(0)
    vocabulary = trainer.model.get_input_embeddings().num_embeddings
    completions = [torch.randint(10, vocabulary, (n,), generator=generator).tolist()
                   for n in (5, 8, 3)]
    model = trainer.model.eval()
    with torch.no_grad():
        ids, mask, width, forward = _inputs(trainer, rows, completions)
        assert (mask[:, 0] == 0).sum() == 2  # two of the three prompts are left-padded
        batched, _, _ = trainer._get_per_token_logps_and_entropies(
            model, ids, mask, width, batch_size=3, num_images=[3, 5, 8], **forward)
        for b, (row, completion) in enumerate(zip(rows, completions, strict=True)):
            ids, mask, alone_width, forward = _inputs(trainer, [row], [completion])
            alone, _, _ = trainer._get_per_token_logps_and_entropies(
                model, ids, mask, alone_width, batch_size=1, num_images=[len(row["images"])],
                **forward)
            n = len(completion)
            assert torch.isfinite(alone).all()
            torch.testing.assert_close(batched[b, :n], alone[0, :n], atol=1e-4, rtol=1e-4)
