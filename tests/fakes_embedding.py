"""A deterministic embedder for fast tests of retrieval and rules (no model, no torch).

Texts sharing character n-grams get similar vectors, so Chinese near-duplicates rank close while the
results stay reproducible across runs and machines (a keyed BLAKE2 hash, not Python's salted ``hash``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from copilot.knowledge.embedding import EMBED_KINDS, EmbedKind

HASH_DIMENSION = 256
NGRAM_SIZES = (1, 2, 3)  # characters; Chinese words are mostly 1-3 characters


class HashEmbedder:
    """Signed feature hashing of character n-grams, L2-normalised. ``kind`` does not change the vector."""

    def __init__(self, dimension: int = HASH_DIMENSION, ngrams: tuple[int, ...] = NGRAM_SIZES) -> None:
        self.dimension = dimension
        self.ngrams = ngrams
        self.name = f"hash-{dimension}-{'.'.join(map(str, ngrams))}"
        self.calls: list[tuple[tuple[str, ...], EmbedKind]] = []  # what was embedded, for assertions

    def _bucket(self, gram: str) -> tuple[int, float]:
        digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8, key=b"copilot-test").digest()
        value = int.from_bytes(digest, "little")
        return value % self.dimension, 1.0 if (value >> 63) & 1 else -1.0

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        compact = "".join(text.split())
        for n in self.ngrams:
            for start in range(len(compact) - n + 1):
                index, sign = self._bucket(compact[start : start + n])
                vector[index] += sign
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # empty text: a fixed unit vector keeps every row normalised
            vector[0] = 1.0
            return vector
        return vector / norm

    def embed(self, texts: Sequence[str], *, kind: EmbedKind) -> np.ndarray:
        if kind not in EMBED_KINDS:
            raise ValueError(f"kind must be one of {EMBED_KINDS}, not {kind!r}")
        self.calls.append((tuple(texts), kind))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(text) for text in texts]).astype(np.float32)
