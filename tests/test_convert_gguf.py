"""GGUF -> bf16 transformers folder: exact on a tiny written GGUF, faithful on the packaged Qwen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import ModelError
from copilot.models.convert_gguf import GGUF_NAME, WEIGHTS_NAME, convert
from tests.fakes_llm import SPECIAL_TOKENS, TINY_LAYERS, write_tiny_gguf

BF16_TOLERANCE = 1e-2  # absolute: the tiny model's weights are ~0.02, bf16 keeps 8 bits of mantissa


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    source = tmp_path_factory.mktemp("tiny_gguf")
    expected = write_tiny_gguf(source / GGUF_NAME)
    out = convert(source, tmp_path_factory.mktemp("tiny_hf"))
    return out, expected


def test_writes_a_loadable_transformers_folder(tiny: tuple[Path, dict[str, Any]]) -> None:
    out, _ = tiny
    for name in ("config.json", WEIGHTS_NAME, "tokenizer.json", "generation_config.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "qwen2"
    assert config["num_hidden_layers"] == TINY_LAYERS
    assert config["dtype"] == "bfloat16"


def test_every_tensor_matches_the_gguf_in_bf16(tiny: tuple[Path, dict[str, Any]]) -> None:
    import torch
    from safetensors.torch import load_file

    out, expected = tiny
    converted = load_file(str(out / WEIGHTS_NAME))
    assert set(converted) == set(expected)
    for name, tensor in converted.items():
        assert tensor.dtype == torch.bfloat16, name
        assert tensor.shape == expected[name].shape, name
        assert torch.allclose(tensor.float(), expected[name], atol=BF16_TOLERANCE), name


def test_generation_config_is_greedy_and_stops_at_end_of_turn(tiny: tuple[Path, dict[str, Any]]) -> None:
    from transformers import AutoTokenizer

    out, _ = tiny
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    generation = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    assert generation["do_sample"] is False
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in generation["eos_token_id"]


def test_tokenizer_keeps_chat_template_and_round_trips_chinese(tiny: tuple[Path, dict[str, Any]]) -> None:
    from transformers import AutoTokenizer

    out, _ = tiny
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    text = "请稍等，我帮您查询一下订单。"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "您好"}], add_generation_prompt=True, tokenize=False
    )
    assert isinstance(prompt, str)
    assert prompt.endswith("<|im_start|>assistant\n")
    for token in SPECIAL_TOKENS:
        assert token in tokenizer.get_vocab()


def test_missing_gguf_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing"):
        convert(tmp_path, tmp_path / "out")


def test_corrupt_gguf_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / GGUF_NAME).write_bytes(b"not a gguf file at all" * 100)
    with pytest.raises(ModelError):
        convert(tmp_path, tmp_path / "out")


@pytest.mark.real
def test_packaged_qwen_converts_faithfully(qwen_dir: Path, tmp_path: Path) -> None:
    """Spot-check converted weights against tensors dequantised straight from the packaged GGUF."""
    import torch
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors import safe_open

    from copilot.models.provision import assemble
    from copilot.models.registry import QWEN_05B

    config = json.loads((qwen_dir / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "qwen2" and config["hidden_size"] == 896
    gguf_path = assemble(QWEN_05B.sources[0], QWEN_05B, tmp_path)
    reader = GGUFReader(gguf_path)
    pairs = {
        "blk.0.attn_k.weight": "model.layers.0.self_attn.k_proj.weight",
        "blk.23.ffn_down.weight": "model.layers.23.mlp.down_proj.weight",
        "output_norm.weight": "model.norm.weight",
    }
    with safe_open(str(qwen_dir / WEIGHTS_NAME), framework="pt") as weights:
        for gguf_name, hf_name in pairs.items():
            raw = next(t for t in reader.tensors if t.name == gguf_name)
            reference = torch.from_numpy(dequantize(raw.data, raw.tensor_type).copy()).float()
            converted = weights.get_tensor(hf_name).float()
            assert converted.shape == reference.shape, hf_name
            scale = reference.abs().max().item()
            assert torch.allclose(converted, reference, atol=scale / 128), hf_name
