"""Convert a CTranslate2 Whisper ``model.bin`` into an openai-whisper checkpoint.

The CTranslate2 file is the one ``ctranslate2.specs.ModelSpec._serialize`` writes (little-endian):
u32 binary version, string spec name, u32 revision, u32 variable count, then per variable a string
name, u8 rank, rank x u32 dims, u8 dtype id, u32 byte count and the raw bytes; finally u32 alias count
and (alias, target) string pairs. A string is a u16 length (including a trailing NUL) and UTF-8 bytes.

The output is what ``whisper.load_model(path)`` reads: a ``torch.save``d dict of plain types and
tensors (``{"dims": {...}, "model_state_dict": {...}}``), loadable with ``weights_only=True``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from copilot.errors import ModelError

if TYPE_CHECKING:
    import torch

CT2_FILE = "model.bin"
OUTPUT_FILE = "base.pt"
SUPPORTED_VERSIONS = (5, 6)  # ctranslate2 4.x writes 6; 5 differs only in what we do not read
WHISPER_SPEC = "WhisperSpec"
# Dtype ids in the order of ctranslate2.specs.model_spec._dtype_to_type_id.
DTYPE_NAMES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
SELF_ATTENTION_PARTS = 3  # Q, K, V fused along dim 0
CROSS_KV_PARTS = 2  # K, V fused along dim 0 (the query has its own projection)


@dataclass(frozen=True)
class Ct2Model:
    """The variables of a CTranslate2 model file, with aliases kept apart."""

    spec: str
    revision: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str]


def _torch_dtype(dtype_id: int) -> torch.dtype:
    import torch

    if not 0 <= dtype_id < len(DTYPE_NAMES):
        raise ModelError(f"unknown CTranslate2 dtype id {dtype_id}")
    dtype: torch.dtype = getattr(torch, DTYPE_NAMES[dtype_id])
    return dtype


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self._handle = handle
        self._path = path

    def take(self, size: int) -> bytes:
        data = self._handle.read(size)
        if len(data) != size:
            raise ModelError(f"{self._path} is truncated (wanted {size} bytes, got {len(data)})")
        return data

    def number(self, fmt: str) -> int:
        value: int = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]
        return value

    def string(self) -> str:
        raw = self.take(self.number("H"))
        return raw.rstrip(b"\0").decode("utf-8")


def read_ct2(path: Path) -> Ct2Model:
    """Parse every variable of a CTranslate2 ``model.bin`` into CPU tensors (original dtypes)."""
    import torch

    try:
        handle = path.open("rb")
    except OSError as e:
        raise ModelError(f"cannot open CTranslate2 model {path}: {e}") from e
    with handle:
        reader = _Reader(handle, path)
        version = reader.number("I")
        if version not in SUPPORTED_VERSIONS:
            raise ModelError(f"{path}: unsupported CTranslate2 binary version {version}")
        spec = reader.string()
        revision = reader.number("I")
        variables: dict[str, torch.Tensor] = {}
        for _ in range(reader.number("I")):
            name = reader.string()
            shape = [reader.number("I") for _ in range(reader.number("B"))]
            dtype = _torch_dtype(reader.number("B"))
            data = bytearray(reader.take(reader.number("I")))  # writable: frombuffer would warn otherwise
            tensor = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
            try:
                variables[name] = tensor.reshape(shape)
            except RuntimeError as e:
                raise ModelError(
                    f"{path}: variable {name} has {tensor.numel()} values for shape {shape}"
                ) from e
        aliases = {}
        for _ in range(reader.number("I")):
            alias = reader.string()
            aliases[alias] = reader.string()
    return Ct2Model(spec=spec, revision=revision, variables=variables, aliases=aliases)


def _layer_count(variables: dict[str, torch.Tensor], prefix: str) -> int:
    count = 0
    while any(name.startswith(f"{prefix}/layer_{count}/") for name in variables):
        count += 1
    return count


def _dims(variables: dict[str, torch.Tensor]) -> dict[str, int]:
    """ModelDimensions fields, read off the tensors' shapes."""
    conv1 = variables["encoder/conv1/weight"]  # (n_audio_state, n_mels, kernel)
    audio_pos = variables["encoder/position_encodings/encodings"]  # (n_audio_ctx, n_audio_state)
    embeddings = variables["decoder/embeddings/weight"]  # (n_vocab, n_text_state)
    text_pos = variables["decoder/position_encodings/encodings"]  # (n_text_ctx, n_text_state)
    return {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(audio_pos.shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": int(variables["encoder/num_heads"].item()),
        "n_audio_layer": _layer_count(variables, "encoder"),
        "n_vocab": int(embeddings.shape[0]),
        "n_text_ctx": int(text_pos.shape[0]),
        "n_text_state": int(embeddings.shape[1]),
        "n_text_head": int(variables["decoder/num_heads"].item()),
        "n_text_layer": _layer_count(variables, "decoder"),
    }


def _linear(out: dict[str, torch.Tensor], v: dict[str, torch.Tensor], src: str, dst: str) -> None:
    out[f"{dst}.weight"] = v[f"{src}/weight"]
    if f"{src}/bias" in v:
        out[f"{dst}.bias"] = v[f"{src}/bias"]


def _norm(out: dict[str, torch.Tensor], v: dict[str, torch.Tensor], src: str, dst: str) -> None:
    out[f"{dst}.weight"] = v[f"{src}/gamma"]
    out[f"{dst}.bias"] = v[f"{src}/beta"]


def _split_linear(
    out: dict[str, torch.Tensor], v: dict[str, torch.Tensor], src: str, dsts: tuple[str, ...]
) -> None:
    """A fused projection split along dim 0; openai's key projection has no bias (CT2 stores zeros)."""
    weights = v[f"{src}/weight"].chunk(len(dsts), dim=0)
    biases = v[f"{src}/bias"].chunk(len(dsts), dim=0)
    for dst, weight, bias in zip(dsts, weights, biases, strict=True):
        out[f"{dst}.weight"] = weight.clone()
        if not dst.endswith(".key"):
            out[f"{dst}.bias"] = bias.clone()


def _block(out: dict[str, torch.Tensor], v: dict[str, torch.Tensor], src: str, dst: str, cross: bool) -> None:
    attn = f"{src}/self_attention"
    _split_linear(out, v, f"{attn}/linear_0", (f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"))
    _linear(out, v, f"{attn}/linear_1", f"{dst}.attn.out")
    _norm(out, v, f"{attn}/layer_norm", f"{dst}.attn_ln")
    if cross:
        xattn = f"{src}/attention"
        _linear(out, v, f"{xattn}/linear_0", f"{dst}.cross_attn.query")
        _split_linear(out, v, f"{xattn}/linear_1", (f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"))
        _linear(out, v, f"{xattn}/linear_2", f"{dst}.cross_attn.out")
        _norm(out, v, f"{xattn}/layer_norm", f"{dst}.cross_attn_ln")
    _linear(out, v, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
    _linear(out, v, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    _norm(out, v, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")


def to_openai(model: Ct2Model) -> dict[str, object]:
    """The openai-whisper checkpoint dict for a parsed CTranslate2 Whisper model."""
    if model.spec != WHISPER_SPEC:
        raise ModelError(f"expected a {WHISPER_SPEC} CTranslate2 model, got {model.spec!r}")
    v = model.variables
    try:
        dims = _dims(v)
        state: dict[str, torch.Tensor] = {}
        _linear(state, v, "encoder/conv1", "encoder.conv1")
        _linear(state, v, "encoder/conv2", "encoder.conv2")
        state["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
        for layer in range(dims["n_audio_layer"]):
            _block(state, v, f"encoder/layer_{layer}", f"encoder.blocks.{layer}", cross=False)
        _norm(state, v, "encoder/layer_norm", "encoder.ln_post")
        state["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
        state["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
        for layer in range(dims["n_text_layer"]):
            _block(state, v, f"decoder/layer_{layer}", f"decoder.blocks.{layer}", cross=True)
        _norm(state, v, "decoder/layer_norm", "decoder.ln")
    except KeyError as e:
        raise ModelError(f"CTranslate2 Whisper model lacks variable {e}") from e
    return {"dims": dims, "model_state_dict": state}


def convert(source_dir: Path, out_dir: Path) -> Path:
    """Convert ``source_dir/model.bin`` (CTranslate2 Whisper) into ``out_dir/base.pt``; return its path."""
    import torch

    checkpoint = to_openai(read_ct2(source_dir / CT2_FILE))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / OUTPUT_FILE
    partial = target.with_name(target.name + ".partial")
    torch.save(checkpoint, partial)
    partial.replace(target)  # a half-written checkpoint never carries the final name
    return target
