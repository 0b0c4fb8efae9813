"""HFBackend on the tiny Qwen2.5-VL: prompts, batching, seeds, usage, errors, blind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from tpru.diagnostics import InputError
from tpru.models import open_backend
from tpru.models.base import Request
from tpru.models.baselines import BlindBackend, strip_images
from tpru.models.hf import HFBackend, SeededSampling, to_messages

IMAGE_TOKEN = 5


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> HFBackend:
    return HFBackend(str(tiny_model_dir), device="cpu", dtype="float32", batch_size=3)


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Two images of the same size (same number of image tokens) and different content."""
    folder = tmp_path_factory.mktemp("twins")
    paths = []
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        image = Image.new("RGB", (56, 56), colour)
        image.paste((250, 250, 250), (0, 0, 28, 28))
        image.save(folder / f"{name}.png")
        paths.append(str(folder / f"{name}.png"))
    return paths[0], paths[1]


def _mixed_requests(images: list[str], twins: tuple[str, str],
                    max_new_tokens: int = 8) -> list[Request]:
    """Requests with 0 to 3 images; some share a prompt and differ only in image content."""
    red, blue = twins
    return [
        Request("red", "Which step is this? <image>", (red,), max_new_tokens),
        Request("three", "Order these: <image> <image> <image>", tuple(images[1:4]),
                max_new_tokens),
        Request("text", "No image here. Which is first?", (), max_new_tokens),
        Request("blue", "Which step is this? <image>", (blue,), max_new_tokens),
        Request("red-blue", "A <image>\nB <image>\nAnswer A or B.", (red, blue),
                max_new_tokens, system="Answer with one letter."),
        Request("blue-red", "A <image>\nB <image>\nAnswer A or B.", (blue, red),
                max_new_tokens, system="Answer with one letter."),
        Request("short", "Order these: <image> <image>", (images[2], images[0]), 3),
    ]


def test_messages_interleave_images_at_the_placeholders() -> None:
    request = Request("q", "<image>first, then <image>", ("a", "b"), system="Be brief")
    messages = to_messages(request)
    assert messages == [
        {"role": "system", "content": [{"type": "text", "text": "Be brief"}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "first, then "},
                                     {"type": "image"}]},
    ]


def test_one_and_several_images_reach_the_model_in_order(backend: HFBackend,
                                                         images: list[str]) -> None:
    one = Request("one", "What is this? <image>", (images[2],), max_new_tokens=5)
    several = Request("several", "<image> then <image> then <image>",
                      (images[0], images[1], images[2]), max_new_tokens=5)
    inputs = backend.encode([one, several])
    ids = inputs["input_ids"]
    # 112x112 gives 16 tokens; 56x56, 112x56 and 112x112 give 4 + 8 + 16.
    assert [int((row == IMAGE_TOKEN).sum()) for row in ids] == [16, 28]
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8], [1, 4, 4], [1, 4, 8], [1, 8, 8]]
    assert (inputs["attention_mask"][:, -1] == 1).all(), "padding must be on the left"

    responses = backend.generate([one, several])
    assert [r.id for r in responses] == ["one", "several"]
    for response in responses:
        assert response.error is None
        assert 1 <= response.usage["completion_tokens"] <= 5
    assert responses[0].usage["image_tokens"] == 16
    assert responses[1].usage["image_tokens"] == 28
    assert responses[0].usage["prompt_tokens"] == int(inputs["attention_mask"][0].sum())


def test_batched_output_equals_one_by_one(backend: HFBackend, images: list[str],
                                          twins: tuple[str, str]) -> None:
    requests = _mixed_requests(images, twins)
    batched = backend.generate(requests)  # batch size 3: batches of 3, 3 and 1
    backend.batch_size = 1
    try:
        sequential = backend.generate(requests)
    finally:
        backend.batch_size = 3
    assert [r.id for r in batched] == [r.id for r in requests]
    assert [(r.text, dict(r.usage)) for r in batched] == \
        [(r.text, dict(r.usage)) for r in sequential]
    assert all(r.error is None for r in batched)
    assert batched[-1].usage["completion_tokens"] <= 3

    # The comparison can fail: the same prompt with an image of the same size but
    # other content gives other text, so images moved between rows would show.
    by_id = {r.id: r.text for r in batched}
    assert by_id["red"] != by_id["blue"]
    assert by_id["red-blue"] != by_id["blue-red"]


def test_greedy_is_repeatable_and_sampling_follows_the_seed(backend: HFBackend,
                                                            images: list[str]) -> None:
    def request(rid: str, seed: int | None, temperature: float = 1.0) -> Request:
        return Request(rid, "Describe <image>", (images[0],), max_new_tokens=5,
                       temperature=temperature, seed=seed)

    greedy = request("g", None, 0.0)
    assert backend.generate([greedy])[0].text == backend.generate([greedy])[0].text

    alone = backend.generate([request("s", 7)])[0].text
    mixed = backend.generate([request("x", 3), greedy, request("s", 7)])
    assert mixed[2].text == alone, "a sampled answer must not depend on its batch"
    samples = {r.text for r in backend.generate([request(f"s{i}", i) for i in range(3)])}
    assert len(samples) > 1

    by_id = backend.generate([request("same-id", None), request("same-id", None)])
    assert by_id[0].text == by_id[1].text, "without a seed, the id seeds the sampling"


def test_seeded_sampling_draws_from_the_softmax() -> None:
    rows = 4000
    scores = torch.log(torch.tensor([[1.0, 3.0]])).repeat(rows, 1)
    no_ids = torch.zeros(rows, 1, dtype=torch.long)

    def share_of_second(temperature: float) -> float:
        sampler = SeededSampling([temperature] * rows, list(range(rows)))
        return sampler(no_ids, scores).argmax(dim=1).float().mean().item()

    assert abs(share_of_second(1.0) - 0.75) < 0.03  # softmax([0, log 3]) = [1/4, 3/4]
    assert share_of_second(0.05) > 0.99
    greedy = SeededSampling([0.0], [1])
    assert torch.equal(greedy(no_ids[:1], scores[:1]), scores[:1])


def test_system_message_is_in_the_prompt(backend: HFBackend, images: list[str]) -> None:
    plain = Request("p", "Hi <image>", (images[0],))
    with_system = Request("s", "Hi <image>", (images[0],), system="Only letters.")
    ids = backend.encode([with_system])["input_ids"][0]
    text = backend.tokenizer.decode(ids)
    assert "<|im_start|>system\nOnly letters.<|im_end|>" in text
    assert "You are a helpful assistant." in backend.tokenizer.decode(
        backend.encode([plain])["input_ids"][0])


def test_unreadable_image_gives_an_error_response_and_the_rest_still_run(
        backend: HFBackend, images: list[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    requests = [Request("ok", "See <image>", (images[0],), max_new_tokens=4),
                Request("bad", "See <image>", (str(broken),), max_new_tokens=4),
                Request("missing", "See <image>", (str(tmp_path / "nope.png"),), max_new_tokens=4),
                Request("ok2", "See <image>", (images[1],), max_new_tokens=4)]
    responses = backend.generate(requests)
    assert [r.id for r in responses] == ["ok", "bad", "missing", "ok2"]
    assert responses[0].error is None and responses[3].error is None
    assert responses[1].error is not None and "broken.png" in responses[1].error
    assert responses[2].error is not None and "nope.png" in responses[2].error
    assert responses[1].text == ""
    assert responses[0].text == backend.generate(requests[:1])[0].text


def test_max_pixels_bounds_the_image_tokens(tiny_model_dir: Path, images: list[str]) -> None:
    small = HFBackend(str(tiny_model_dir), device="cpu", max_pixels=56 * 56)
    inputs = small.encode([Request("q", "<image>", (images[2],))])  # 112x112, normally 16
    assert int((inputs["input_ids"] == IMAGE_TOKEN).sum()) == 4
    with pytest.raises(InputError, match="min_pixels 12544 is above max_pixels 3136"):
        HFBackend(str(tiny_model_dir), max_pixels=56 * 56, min_pixels=112 * 112)


def test_blind_sends_no_images(backend: HFBackend, images: list[str],
                               twins: tuple[str, str]) -> None:
    requests = _mixed_requests(images, twins, max_new_tokens=4)
    seeing = backend.generate(requests)
    blind = BlindBackend(backend)
    assert blind.name == f"blind:hf:{backend.name.removeprefix('hf:')}"
    responses = blind.generate(requests)
    assert [r.id for r in responses] == [r.id for r in requests]
    assert all(r.error is None for r in responses)
    assert [r.usage["image_tokens"] for r in responses] == [0] * len(requests)
    assert sum(r.usage["image_tokens"] for r in seeing) > 0
    inputs = backend.encode([strip_images(r) for r in requests])
    assert int((inputs["input_ids"] == IMAGE_TOKEN).sum()) == 0
    assert "pixel_values" not in inputs


def test_open_backend_builds_hf_and_blind_hf(tiny_model_dir: Path) -> None:
    hf = open_backend(f"hf:{tiny_model_dir}", device="cpu", batch_size=2)
    assert isinstance(hf, HFBackend) and hf.name == f"hf:{tiny_model_dir}"
    assert hf.batch_size == 2
    blind = open_backend(f"blind:hf:{tiny_model_dir}", device="cpu")
    assert isinstance(blind, BlindBackend) and isinstance(blind.inner, HFBackend)
    with pytest.raises(InputError, match="no option 'temperature'"):
        open_backend(f"hf:{tiny_model_dir}", temperature=0.5)


def test_bad_model_settings_fail_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothing-here: no such local model folder, and not "
                                         r"a hub id"):
        HFBackend(str(tmp_path / "nothing-here"))
    (tmp_path / "a-file").write_text("not a model")
    with pytest.raises(InputError, match="a-file: is a file, not a model folder"):
        HFBackend(str(tmp_path / "a-file"))
    with pytest.raises(InputError, match=r"cannot load model '[^']*empty': Unrecognized"):
        (tmp_path / "empty").mkdir()
        HFBackend(str(tmp_path / "empty"))  # a folder, but not a model's
    with pytest.raises(InputError, match="unknown dtype 'float8'"):
        HFBackend("x", dtype="float8")
    with pytest.raises(InputError, match="batch_size"):
        HFBackend("x", batch_size=0)


@pytest.mark.parametrize(("device", "message"), [
    ("bogus", "unknown device 'bogus' (devices: auto, cpu, cuda, cuda:N, mps)"),
    ("meta", "unknown device 'meta'"),
    ("cuda", "device cuda requested but torch.cuda.is_available() is False"),
    ("cuda:1", "device cuda:1 requested but torch.cuda.is_available() is False"),
])
def test_a_device_this_machine_lacks_is_refused_before_loading(
        tmp_path: Path, device: str, message: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    # The model folder does not exist: the device is checked first, before any loading.
    with pytest.raises(InputError) as error:
        HFBackend(str(tmp_path / "model"), device=device)
    assert message in str(error.value)


def test_a_cuda_index_past_the_last_gpu_is_refused() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    index = torch.cuda.device_count()
    with pytest.raises(InputError, match=f"device cuda:{index} requested but there are only"):
        HFBackend("x", device=f"cuda:{index}")


@pytest.mark.slow
def test_hub_id_loads_from_the_hub_cache_offline(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The hub code path, for real: a hub id resolved from a hub cache, with the network off."""
    commit = "0" * 40
    repo = tmp_path / "hub" / "models--tpru-test--tiny-qwen"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "home")}
    script = """
import pytest
from tpru.diagnostics import InputError
from tpru.models import open_backend
from tpru.models.base import Request
backend = open_backend("hf:tpru-test/tiny-qwen", device="cpu")
response = backend.generate([Request("q", "Hello", max_new_tokens=2)])[0]
assert response.error is None and response.usage["completion_tokens"] >= 1, response
assert backend.name == "hf:tpru-test/tiny-qwen"
with pytest.raises(InputError, match="cannot load model 'tpru-test/absent'"):
    open_backend("hf:tpru-test/absent")
"""
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
