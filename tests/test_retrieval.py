"""Retrieval: dense search against a brute-force oracle, BM25, fusion, manifest checks, query building."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from copilot.config import Config, RetrievalConfig
from copilot.errors import IndexMismatchError
from copilot.query import build_query
from copilot.retrieval import (
    Retriever,
    build_index,
    index_problem,
    index_text,
    open_retriever,
    reciprocal_rank_fusion,
    tokenize,
)
from copilot.types import Passage, Segment
from tests.fakes_embedding import HashEmbedder

REPO = Path(__file__).resolve().parent.parent

PASSAGES = [
    Passage("a", "d.txt", "电话无法听清", "遇到用户讲方言无法听懂时,请用户说普通话。"),
    Passage("b", "d.txt", "投诉", "遇到用户投诉热线难拨通时,先致歉并感谢耐心等候。"),
    Passage("c", "d.txt", "保修", "产品在购买后一年内因质量问题可免费维修。"),
    Passage("d", "d.txt", "结束语", "向用户解释完毕后,应确认用户是否明白,再说再见。"),
    Passage("e", "d.txt", "保持", "查询时间较长时,提醒用户稍等,不要挂线。"),
]


def _retriever(tmp_path: Path, mode: str = "hybrid") -> Retriever:
    embedder = HashEmbedder()
    config = Config(retrieval=RetrievalConfig(mode=mode))  # type: ignore[arg-type]
    return open_retriever(
        config, passages=PASSAGES, embedder=embedder, index_dir=tmp_path, log=lambda _m: None
    )


def test_dense_search_matches_a_brute_force_oracle(tmp_path):
    retriever = _retriever(tmp_path)
    embedder = retriever.embedder
    assert embedder is not None
    matrix = embedder.embed([index_text(p) for p in PASSAGES], kind="passage")
    for query in ("客户说方言听不懂", "保修期内维修要钱吗", "热线打不通", "稍等一下"):
        vector = embedder.embed([query], kind="query")[0]
        oracle = np.argsort(-(matrix @ vector), kind="stable")
        got = retriever.dense_ranking(query, len(PASSAGES))
        assert [i for i, _ in got] == list(oracle) or np.allclose(
            sorted((s for _, s in got), reverse=True), sorted(matrix @ vector, reverse=True), atol=1e-5
        )
        assert got[0][0] == oracle[0]
        assert got[0][1] == pytest.approx(float(matrix[oracle[0]] @ vector), abs=1e-5)


def test_bm25_finds_the_lexical_match_and_ignores_unknown_words(tmp_path):
    retriever = _retriever(tmp_path, "bm25")
    assert retriever.search("方言", k=1)[0].passage.id == "a"
    assert retriever.search("火星探测器", k=3) == []
    assert "的" not in tokenize("我的冰箱坏了")


def test_hybrid_fuses_both_rankings(tmp_path):
    retriever = _retriever(tmp_path)
    hits = retriever.search("热线打了半天打不通", k=3)
    assert hits[0].passage.id == "b"
    assert len(hits) == 3 and hits[0].score >= hits[-1].score


def test_reciprocal_rank_fusion():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60)
    assert [item for item, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_stale_or_mismatched_index_is_rebuilt_with_notice_or_refused(tmp_path):
    embedder = HashEmbedder()
    build_index(PASSAGES, embedder, tmp_path)
    assert index_problem(tmp_path, PASSAGES, embedder) == ""
    changed = [*PASSAGES[:-1], Passage("e", "d.txt", "保持", "改过的文字。")]
    assert "changed" in index_problem(tmp_path, changed, embedder)
    assert "embedder" in index_problem(tmp_path, PASSAGES, HashEmbedder(dimension=128))
    config = Config()
    with pytest.raises(IndexMismatchError):
        open_retriever(config, passages=changed, embedder=embedder, index_dir=tmp_path, on_stale="refuse")
    notices: list[str] = []
    retriever = open_retriever(
        config, passages=changed, embedder=embedder, index_dir=tmp_path, log=notices.append
    )
    assert notices and "rebuilding" in notices[0]
    assert index_problem(tmp_path, changed, embedder) == ""
    assert retriever.search("改过的文字", k=1)[0].passage.text == "改过的文字。"


def test_build_query_uses_latest_customer_turn_first_with_context():
    segments = [
        Segment("agent", 0.0, 2.0, "您好,请问有什么可以帮您?"),
        Segment("customer", 2.0, 4.0, "我家油烟机坏了。"),
        Segment("agent", 4.0, 6.0, "请问是什么型号?"),
        Segment("customer", 6.0, 7.0, "型号是CXW-200,"),
        Segment("customer", 7.0, 8.0, "去年买的。"),
    ]
    assert build_query(segments, max_context_turns=1) == "型号是CXW-200,去年买的。 请问是什么型号?"
    assert build_query(segments, max_context_turns=0) == "型号是CXW-200,去年买的。"
    assert build_query([]) == ""
    mono = [Segment("unknown", 0.0, 1.0, "能听到吗")]
    assert build_query(mono) == "能听到吗"


@pytest.mark.real
def test_real_e5_retrieves_handbook_clauses(e5_dir, tmp_path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from copilot.config import EmbedderConfig
    from copilot.embedding import load_embedder
    from copilot.knowledge import load_passages

    embedder = load_embedder(EmbedderConfig(model=str(e5_dir)))
    passages = load_passages(REPO / "knowledge")
    retriever = open_retriever(
        Config(), passages=passages, embedder=embedder, index_dir=tmp_path, log=lambda _m: None
    )
    cases = {
        "客户讲方言我听不懂怎么办": "方言",
        "客户打错电话了": "打错电话",
        "客户投诉热线很难打通": "难拨通",
    }
    for query, expected in cases.items():
        hits = retriever.search(query, k=3)
        assert any(expected in h.passage.text for h in hits), query
        assert all(-1.0 <= h.score <= 1.0 for h in retriever.search(query, k=3, mode="dense"))
