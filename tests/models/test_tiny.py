"""The tiny offline Qwen2.5-VL: builds fast, reloads with the stock classes, deterministic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tpru.models._torchvision import ensure_torchvision, import_transformers
from tpru.models.tiny import SPECIAL_TOKENS, main, make_tiny_qwen25_vl

FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
         "tokenizer_config.json", "processor_config.json", "chat_template.jinja")


def _same_files(a: Path, b: Path) -> bool:
    return all((a / name).read_bytes() == (b / name).read_bytes() for name in FILES)


def test_folder_has_every_file_and_loads_offline(tiny_model_dir: Path) -> None:
    for name in FILES:
        assert (tiny_model_dir / name).is_file(), name
    transformers = import_transformers()
    processor = transformers.AutoProcessor.from_pretrained(tiny_model_dir, local_files_only=True)
    model = transformers.Qwen2_5_VLForConditionalGeneration.from_pretrained(
        tiny_model_dir, local_files_only=True)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert type(processor.image_processor).__name__ == "Qwen2VLImageProcessor"
    assert type(processor.video_processor).__name__ == "Qwen2VLVideoProcessor"

    tokenizer = processor.tokenizer
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(7))
    config = model.config
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config.vision_end_token_id == tokenizer.convert_tokens_to_ids("<|vision_end|>")
    text = config.text_config
    assert (text.vocab_size, text.hidden_size, text.num_hidden_layers) == (512, 64, 2)
    assert (text.num_attention_heads, text.num_key_value_heads) == (4, 2)
    assert text.rope_parameters["mrope_section"] == [2, 3, 3]
    vision = config.vision_config
    assert (vision.depth, vision.hidden_size, vision.out_hidden_size) == (2, 64, 64)
    assert len(tokenizer) == 512
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_tokenizer_round_trips_text(tiny_model_dir: Path) -> None:
    transformers = import_transformers()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    text = "These photos show the process of opening a drawer. <answer>CABD</answer> é 漢字"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8")), "the BPE merges should shorten common text"
    special = tokenizer("<|im_start|>user<|im_end|>")["input_ids"]
    assert special[0] == 1 and special[-1] == 2


def test_chat_template_and_processor_place_image_tokens(tiny_model_dir: Path,
                                                        images: list[str]) -> None:
    transformers = import_transformers()
    processor = transformers.AutoProcessor.from_pretrained(tiny_model_dir, local_files_only=True)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Next?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Next?"
                    "<|im_end|>\n<|im_start|>assistant\n")
    from PIL import Image

    with Image.open(images[2]) as image:  # 112 x 112: 8 x 8 patches, merged 2 x 2
        inputs = processor(text=[text], images=[image.convert("RGB")], return_tensors="pt")
    assert int((inputs["input_ids"] == 5).sum()) == 16
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]


def test_model_runs_a_forward_pass_with_an_image(tiny_model_dir: Path, images: list[str]) -> None:
    transformers = import_transformers()
    processor = transformers.AutoProcessor.from_pretrained(tiny_model_dir, local_files_only=True)
    model = transformers.AutoModelForImageTextToText.from_pretrained(tiny_model_dir,
                                                                     local_files_only=True)
    from PIL import Image

    text = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hi<|im_end|>\n"
    with Image.open(images[0]) as image:
        inputs = processor(text=[text], images=[image.convert("RGB")], return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits
    assert logits.shape == (1, inputs["input_ids"].shape[1], 512)
    assert torch.isfinite(logits).all()


def test_cli_entry_rebuilds_the_same_files_and_another_seed_differs(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    main([str(tmp_path / "again")])
    assert _same_files(tiny_model_dir, tmp_path / "again")

    other = make_tiny_qwen25_vl(tmp_path / "seed1", seed=1)
    assert (other / "model.safetensors").read_bytes() != \
        (tiny_model_dir / "model.safetensors").read_bytes()


def test_building_leaves_the_global_torch_random_state_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_qwen25_vl(tmp_path / "model", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_torchvision_workaround_is_idempotent_and_transforms_work() -> None:
    ensure_torchvision()
    ensure_torchvision()
    from torchvision.transforms.v2 import functional

    resized = functional.resize(torch.zeros(3, 20, 40), [10, 20], antialias=True)
    assert resized.shape == (3, 10, 20)


def test_cli_needs_an_output_folder() -> None:
    with pytest.raises(SystemExit):
        main([])


def test_two_heads_give_the_head_size_vllm_needs_on_a_cpu(tmp_path: Path,
                                                         images: list[str]) -> None:
    from tpru.models.base import Request
    from tpru.models.hf import HFBackend

    path = make_tiny_qwen25_vl(tmp_path / "two", heads=2)
    text = import_transformers().AutoConfig.from_pretrained(path).text_config
    assert (text.num_attention_heads, text.num_key_value_heads) == (2, 1)
    assert text.hidden_size // text.num_attention_heads == 32
    assert sum(text.rope_parameters["mrope_section"]) == 16  # half the head size
    [response] = HFBackend(str(path), device="cpu").generate(
        [Request(id="r", prompt="Which? <image>", images=(images[0],), max_new_tokens=4)])
    assert response.error is None and response.usage["completion_tokens"] == 4
    with pytest.raises(ValueError, match="heads must be one of"):
        make_tiny_qwen25_vl(tmp_path / "three", heads=3)
