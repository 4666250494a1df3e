"""Hybrid retrieval over the handbook passages: dense (FAISS inner product on unit vectors) + BM25.

One passage table keyed by id (knowledge/passages.jsonl). The dense index is persisted under
``$COPILOT_HOME/index/`` with a manifest (embedder name, dimension, corpus hash); an index whose
manifest does not match the passages and embedder in use is rebuilt with a notice, or refused with
``on_stale="refuse"``: it is never used silently. BM25 is rebuilt in memory on load (a few ms for
a few hundred passages), so it can never be stale.

BM25 comes from ``bm25s``: maintained, numpy-vectorised scoring, and it takes our own jieba tokens;
``rank-bm25`` has been unmaintained since 2022 and scores in pure Python.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from copilot.config import Config, RetrievalConfig, copilot_home
from copilot.errors import IndexMismatchError, KnowledgeError
from copilot.types import Passage, SearchHit

if TYPE_CHECKING:
    from copilot.embedding import Embedder

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
INDEX_FORMAT = 1  # bump when the on-disk layout or index_text() changes
MANIFEST_FILE = "manifest.json"
DENSE_FILE = "dense.faiss"
FUSION_DEPTH = 50  # candidates taken from each ranking before reciprocal-rank fusion
# Tokens that carry no topic: particles, pronouns and filler words callers use all the time.
STOPWORDS = frozenset(
    [
        "的",
        "了",
        "是",
        "我",
        "你",
        "您",
        "他",
        "她",
        "它",
        "们",
        "我们",
        "你们",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "哦",
        "嗯",
        "喂",
        "哎",
        "就",
        "都",
        "也",
        "还",
        "又",
        "在",
        "和",
        "与",
        "及",
        "或",
        "这",
        "那",
        "这个",
        "那个",
        "一个",
        "一下",
        "有",
        "没",
        "没有",
        "给",
        "对",
        "把",
        "被",
        "让",
        "说",
        "要",
        "会",
        "能",
        "可以",
        "什么",
        "怎么",
        "怎么办",
        "为什么",
        "请问",
        "一",
        "个",
        "下",
        "上",
        "很",
        "太",
        "啦",
        "嘛",
        "么",
        "吗",
        "着",
        "过",
        "到",
        "去",
        "来",
        "从",
        "还是",
        "就是",
        "但是",
        "可是",
        "然后",
        "如果",
    ]
)


def index_text(passage: Passage) -> str:
    """What is embedded and tokenised: the section path gives a clause its topic words."""
    return f"{passage.section}\n{passage.text}" if passage.section else passage.text


def corpus_hash(passages: Sequence[Passage]) -> str:
    digest = hashlib.sha256()
    for passage in passages:
        digest.update(f"{passage.id}\t{index_text(passage)}\n".encode())
    return digest.hexdigest()


def tokenize(text: str) -> list[str]:
    """jieba search-mode tokens (long words also yield their parts), lower-cased, without stopwords."""
    import jieba

    tokens = []
    for token in jieba.cut_for_search(text.lower()):
        token = token.strip()
        if token and token not in STOPWORDS and any(ch.isalnum() for ch in token):
            tokens.append(token)
    return tokens


@dataclass(frozen=True)
class IndexManifest:
    embedder: str
    dimension: int
    corpus_hash: str
    passages: int
    format: int = INDEX_FORMAT
    built_at: str = ""
    seconds: float = 0.0


def default_index_dir() -> Path:
    return copilot_home() / "index"


def read_manifest(index_dir: Path) -> IndexManifest | None:
    path = index_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        return IndexManifest(**json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError):
        return None


def index_problem(index_dir: Path, passages: Sequence[Passage], embedder: Embedder) -> str:
    """Why the persisted index cannot be used with these passages and this embedder ("" if it can)."""
    manifest = read_manifest(index_dir)
    if manifest is None or not (index_dir / DENSE_FILE).is_file():
        return f"no index at {index_dir}"
    if manifest.format != INDEX_FORMAT:
        return f"index format {manifest.format} is not the current {INDEX_FORMAT}"
    if manifest.embedder != embedder.name or manifest.dimension != embedder.dimension:
        return (
            f"index was built with embedder {manifest.embedder} ({manifest.dimension}-d), "
            f"not {embedder.name} ({embedder.dimension}-d)"
        )
    if manifest.corpus_hash != corpus_hash(passages):
        return "the knowledge base changed since the index was built"
    return ""


def build_index(passages: Sequence[Passage], embedder: Embedder, index_dir: Path) -> IndexManifest:
    """Embed every passage and write the FAISS index and its manifest (manifest last: atomic enough)."""
    import faiss

    if not passages:
        raise KnowledgeError("the knowledge base has no passages; run: copilot ingest")
    started = time.monotonic()
    vectors = embedder.embed([index_text(p) for p in passages], kind="passage")
    if vectors.shape != (len(passages), embedder.dimension):
        raise KnowledgeError(
            f"embedder returned shape {vectors.shape}, expected ({len(passages)}, {embedder.dimension})"
        )
    index = faiss.IndexFlatIP(embedder.dimension)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    index_dir.mkdir(parents=True, exist_ok=True)
    (index_dir / MANIFEST_FILE).unlink(missing_ok=True)  # a half-written index must never look valid
    faiss.write_index(index, str(index_dir / DENSE_FILE))
    manifest = IndexManifest(
        embedder=embedder.name,
        dimension=embedder.dimension,
        corpus_hash=corpus_hash(passages),
        passages=len(passages),
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        seconds=round(time.monotonic() - started, 2),
    )
    partial = index_dir / (MANIFEST_FILE + ".partial")
    partial.write_text(json.dumps(asdict(manifest), indent=1), encoding="utf-8")
    partial.replace(index_dir / MANIFEST_FILE)
    return manifest


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int) -> list[tuple[int, float]]:
    """Cormack et al. (2009): score = sum over rankings of 1 / (k + rank), rank from 1."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


class Retriever:
    """Searches one passage table with dense, BM25 or fused rankings."""

    def __init__(
        self,
        passages: Sequence[Passage],
        config: RetrievalConfig,
        *,
        embedder: Embedder | None = None,
        dense_index: Any = None,
    ) -> None:
        import logging

        import bm25s
        import jieba

        jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter is not a CLI message
        if not passages:
            raise KnowledgeError("the knowledge base has no passages; run: copilot ingest")
        self.passages = tuple(passages)
        self.by_id = {p.id: p for p in self.passages}
        self.config = config
        self.embedder = embedder
        self._dense = dense_index
        self._bm25 = bm25s.BM25()
        self._bm25.index([tokenize(index_text(p)) for p in self.passages], show_progress=False)
        self._vocabulary = set(self._bm25.vocab_dict)

    def dense_ranking(self, query: str, depth: int) -> list[tuple[int, float]]:
        if self.embedder is None or self._dense is None:
            raise KnowledgeError("dense retrieval needs an embedder and an index (mode bm25 needs neither)")
        vector = self.embedder.embed([query], kind="query")
        scores, rows = self._dense.search(np.ascontiguousarray(vector, dtype=np.float32), depth)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def bm25_ranking(self, query: str, depth: int) -> list[tuple[int, float]]:
        tokens = [t for t in tokenize(query) if t in self._vocabulary]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")[:depth]
        return [(int(i), float(scores[i])) for i in order if scores[i] > 0]

    def search(self, query: str, *, k: int | None = None, mode: Mode | None = None) -> list[SearchHit]:
        k = k or self.config.top_k
        mode = mode or self.config.mode
        if mode not in MODES:
            raise KnowledgeError(f"retrieval mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not query.strip():
            return []
        depth = min(len(self.passages), max(k, FUSION_DEPTH))
        if mode == "dense":
            ranked = self.dense_ranking(query, depth)
        elif mode == "bm25":
            ranked = self.bm25_ranking(query, depth)
        else:
            dense = self.dense_ranking(query, depth)
            lexical = self.bm25_ranking(query, depth)
            ranked = reciprocal_rank_fusion(
                [[i for i, _ in dense], [i for i, _ in lexical]], self.config.rrf_k
            )
        return [SearchHit(self.passages[i], score) for i, score in ranked[:k]]


def _stderr(message: str) -> None:
    print(f"copilot: {message}", file=sys.stderr)


def open_retriever(
    config: Config,
    *,
    passages: Sequence[Passage] | None = None,
    embedder: Embedder | None = None,
    index_dir: Path | None = None,
    on_stale: Literal["rebuild", "refuse"] = "rebuild",
    log: Callable[[str], None] = _stderr,
) -> Retriever:
    """Load the passage table and its index; a missing or stale index is rebuilt with a notice or refused."""
    from copilot.knowledge import load_passages

    table = list(passages) if passages is not None else load_passages(Path(config.knowledge_dir))
    if config.retrieval.mode == "bm25" and embedder is None:
        return Retriever(table, config.retrieval)
    if embedder is None:
        from copilot.embedding import load_embedder

        embedder = load_embedder(config.embedder)
    directory = index_dir or default_index_dir()
    problem = index_problem(directory, table, embedder)
    if problem:
        if on_stale == "refuse":
            raise IndexMismatchError(f"{problem}; run: copilot index")
        log(f"{problem}: rebuilding the index ({len(table)} passages)")
        build_index(table, embedder, directory)
    import faiss

    try:
        dense = faiss.read_index(str(directory / DENSE_FILE))
    except RuntimeError as e:
        raise IndexMismatchError(f"cannot read {directory / DENSE_FILE}: {e}; run: copilot index") from e
    if dense.ntotal != len(table) or dense.d != embedder.dimension:
        raise IndexMismatchError(f"{directory / DENSE_FILE} does not match its manifest; run: copilot index")
    return Retriever(table, config.retrieval, embedder=embedder, dense_index=dense)
