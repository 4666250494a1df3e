"""The CTranslate2 -> openai-whisper converter: the binary parser, the name mapping, the real model."""

from __future__ import annotations

import os
import struct
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch

from copilot.errors import ModelError
from copilot.models import convert_whisper
from copilot.models.convert_whisper import read_ct2, to_openai

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DTYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack("<H", len(raw) + 1) + raw + b"\0"


def write_ct2(
    path: Path,
    variables: dict[str, np.ndarray],
    aliases: dict[str, str] | None = None,
    spec: str = "WhisperSpec",
    version: int = 6,
) -> None:
    """The layout ctranslate2.specs.ModelSpec._serialize writes, independently re-implemented."""
    out = bytearray(struct.pack("<I", version) + _string(spec) + struct.pack("<I", 3))
    out += struct.pack("<I", len(variables))
    for name, array in variables.items():
        out += _string(name) + struct.pack("<B", array.ndim)
        out += b"".join(struct.pack("<I", d) for d in array.shape)
        data = np.ascontiguousarray(array).tobytes()
        out += struct.pack("<B", DTYPE_IDS[array.dtype.name]) + struct.pack("<I", len(data)) + data
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    path.write_bytes(bytes(out))


def test_read_ct2_parses_names_shapes_dtypes_and_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    variables = {
        "a/weight": rng.standard_normal((3, 4)).astype(np.float16),
        "a/bias": rng.standard_normal(5).astype(np.float32),
        "b/num_heads": np.array(8, dtype=np.int16),
        "b/flag": np.array(1, dtype=np.int8),
        "c/ids": np.arange(6, dtype=np.int32).reshape(2, 1, 3),
    }
    path = tmp_path / "model.bin"
    write_ct2(path, variables, {"proj/weight": "a/weight"}, spec="TinySpec")
    model = read_ct2(path)
    assert model.spec == "TinySpec"
    assert model.revision == 3
    assert model.aliases == {"proj/weight": "a/weight"}
    assert list(model.variables) == list(variables)
    for name, expected in variables.items():
        got = model.variables[name]
        assert tuple(got.shape) == expected.shape, name
        assert str(got.dtype) == f"torch.{expected.dtype.name}", name
        np.testing.assert_array_equal(got.numpy(), expected)


def test_read_ct2_rejects_truncated_and_unknown_versions(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_ct2(path, {"x": np.ones(4, dtype=np.float32)})
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ModelError, match="truncated"):
        read_ct2(path)
    write_ct2(path, {"x": np.ones(4, dtype=np.float32)}, version=99)
    with pytest.raises(ModelError, match="version"):
        read_ct2(path)


def _tiny_whisper_ct2(state: int, heads: int, layers: int, mels: int, vocab: int) -> dict[str, np.ndarray]:
    """Random variables with the names and shapes of a CTranslate2 WhisperSpec."""
    rng = np.random.default_rng(1)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float16)

    v: dict[str, np.ndarray] = {
        "encoder/conv1/weight": r(state, mels, 3),
        "encoder/conv1/bias": r(state),
        "encoder/conv2/weight": r(state, state, 3),
        "encoder/conv2/bias": r(state),
        "encoder/position_encodings/encodings": r(12, state),
        "encoder/layer_norm/gamma": r(state),
        "encoder/layer_norm/beta": r(state),
        "encoder/num_heads": np.array(heads, dtype=np.int16),
        "decoder/embeddings/weight": r(vocab, state),
        "decoder/position_encodings/encodings": r(7, state),
        "decoder/layer_norm/gamma": r(state),
        "decoder/layer_norm/beta": r(state),
        "decoder/num_heads": np.array(heads, dtype=np.int16),
    }

    def linear(name: str, out: int, inp: int) -> None:
        v[f"{name}/weight"] = r(out, inp)
        v[f"{name}/bias"] = r(out)

    def norm(name: str) -> None:
        v[f"{name}/gamma"] = r(state)
        v[f"{name}/beta"] = r(state)

    for side in ("encoder", "decoder"):
        for layer in range(layers):
            p = f"{side}/layer_{layer}"
            linear(f"{p}/self_attention/linear_0", 3 * state, state)
            linear(f"{p}/self_attention/linear_1", state, state)
            norm(f"{p}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{p}/attention/linear_0", state, state)
                linear(f"{p}/attention/linear_1", 2 * state, state)
                linear(f"{p}/attention/linear_2", state, state)
                norm(f"{p}/attention/layer_norm")
            linear(f"{p}/ffn/linear_0", 4 * state, state)
            linear(f"{p}/ffn/linear_1", state, 4 * state)
            norm(f"{p}/ffn/layer_norm")
    return v


def test_tiny_whisper_converts_into_a_loadable_openai_checkpoint(tmp_path: Path) -> None:
    from whisper.model import ModelDimensions, Whisper

    v = _tiny_whisper_ct2(state=8, heads=2, layers=2, mels=4, vocab=11)
    write_ct2(tmp_path / "model.bin", v, {"decoder/projection/weight": "decoder/embeddings/weight"})
    target = convert_whisper.convert(tmp_path, tmp_path / "out")
    assert target == tmp_path / "out" / "base.pt"

    checkpoint = torch.load(target, weights_only=True)  # no pickled objects beyond plain types
    assert checkpoint["dims"] == {
        "n_mels": 4,
        "n_audio_ctx": 12,
        "n_audio_state": 8,
        "n_audio_head": 2,
        "n_audio_layer": 2,
        "n_vocab": 11,
        "n_text_ctx": 7,
        "n_text_state": 8,
        "n_text_head": 2,
        "n_text_layer": 2,
    }
    model = Whisper(ModelDimensions(**checkpoint["dims"]))
    model.load_state_dict(checkpoint["model_state_dict"])  # strict: every key present, no extras

    sd = checkpoint["model_state_dict"]
    fused = v["decoder/layer_1/self_attention/linear_0/weight"]
    np.testing.assert_array_equal(sd["decoder.blocks.1.attn.key.weight"].numpy(), fused[8:16])
    np.testing.assert_array_equal(
        sd["decoder.blocks.1.attn.value.bias"].numpy(), v["decoder/layer_1/self_attention/linear_0/bias"][16:]
    )
    kv = v["decoder/layer_0/attention/linear_1/weight"]
    np.testing.assert_array_equal(sd["decoder.blocks.0.cross_attn.value.weight"].numpy(), kv[8:])
    np.testing.assert_array_equal(sd["encoder.ln_post.weight"].numpy(), v["encoder/layer_norm/gamma"])
    np.testing.assert_array_equal(
        sd["encoder.blocks.0.mlp.2.bias"].numpy(), v["encoder/layer_0/ffn/linear_1/bias"]
    )


def test_non_whisper_spec_is_refused(tmp_path: Path) -> None:
    write_ct2(tmp_path / "model.bin", {"x": np.ones(2, dtype=np.float32)}, spec="TransformerSpec")
    with pytest.raises(ModelError, match="WhisperSpec"):
        to_openai(read_ct2(tmp_path / "model.bin"))


def _normalise(text: str) -> str:
    import opencc

    simplified = opencc.OpenCC("t2s").convert(text)
    return "".join(c for c in simplified if not unicodedata.category(c).startswith(("P", "Z", "S")))


@pytest.mark.real
def test_packaged_whisper_base_converts_and_transcribes(tmp_path: Path) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import jiwer
    import whisper
    from faster_whisper import decode_audio

    from copilot.models.provision import assemble
    from copilot.models.registry import WHISPER_BASE

    assemble(WHISPER_BASE.sources[0], WHISPER_BASE, tmp_path / "source")
    checkpoint = convert_whisper.convert(tmp_path / "source", tmp_path / "out")
    model = whisper.load_model(str(checkpoint), device="cpu")
    assert model.dims.n_audio_state == 512 and model.dims.n_text_layer == 6

    refs = dict(
        line.split("\t")[:2]
        for line in (SHARED / "audio" / "refs.tsv").read_text(encoding="utf-8").splitlines()
    )
    name = "firered_BAC009S0764W0121.wav"
    audio = decode_audio(str(SHARED / "audio" / name), sampling_rate=16000)
    result = model.transcribe(audio, language="zh", initial_prompt="以下是普通话的句子。", fp16=False)
    cer = jiwer.cer(_normalise(refs[name]), _normalise(str(result["text"])))
    assert cer < 0.3, (cer, result["text"])
