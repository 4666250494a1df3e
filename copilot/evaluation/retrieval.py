"""``copilot eval retrieval``: recall@1/3/5, MRR and latency of dense, BM25 and hybrid retrieval.

"None fits" counts as an answer, as ``copilot search`` gives it: a query labelled ``expect: none`` is right at
rank 1 when the answer is none, and a query with a fitting clause is a miss when it is. The none answer is the
knowledge base's fit model (:func:`copilot.knowledge.retrieval.assess`), the same for every mode.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from copilot.config import REPO_DIR, Config
from copilot.errors import KnowledgeError
from copilot.evaluation import EvalOutcome, SuiteOptions, register_suite
from copilot.evaluation.metrics import percentile, rank_none_counted
from copilot.knowledge.retrieval import MODES, Mode, Retriever, assess, index_text, open_retriever
from copilot.types import Passage

DEFAULT_SET = REPO_DIR / "eval" / "retrieval.yaml"
RECALL_AT = (1, 3, 5)
MRR_DEPTH = 10  # a clause found below rank 10 counts as not found
WARMUP_QUERIES = 2  # first calls pay for lazy initialisation (jieba dictionary, torch kernels)
MS_PER_SECOND = 1000.0
NONE_LABEL = "none"  # ``expect: none``: nothing in the handbooks fits the query


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    expect: tuple[str, ...]  # distinctive substrings; a passage holding any of them is right; () = none fits


@dataclass(frozen=True)
class ModeResult:
    mode: str
    recall: dict[int, float]
    mrr: float
    p50_ms: float
    p95_ms: float
    cpu_p50_ms: float  # CPU time of the process per query: what a quiet machine's wall time would be
    misses: tuple[str, ...]  # queries whose clause was not in the top 3 (or whose right "none" was not given)
    none_right: int = 0  # queries labelled none that were answered none
    false_none: int = 0  # queries with a fitting clause that were answered none


def load_set(path: Path) -> list[LabelledQuery]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise KnowledgeError(f"cannot read the retrieval set {path}: {e}") from e
    if not isinstance(data, list):
        raise KnowledgeError(f"{path} must be a list of {{query, expect}}")
    items = []
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict) or "query" not in item or "expect" not in item:
            raise KnowledgeError(f"{path} item {number} needs query and expect")
        expect = item["expect"] if isinstance(item["expect"], list) else [item["expect"]]
        if expect == [NONE_LABEL]:
            expect = []
        items.append(LabelledQuery(str(item["query"]), tuple(str(e) for e in expect)))
    return items


def is_relevant(passage: Passage, item: LabelledQuery) -> bool:
    text = index_text(passage)
    return any(expected in text for expected in item.expect)


def unlabelled(items: Sequence[LabelledQuery], passages: Sequence[Passage]) -> list[str]:
    """Labels that match no passage at all (a typo, or the knowledge base changed)."""
    return [i.query for i in items if i.expect and not any(is_relevant(p, i) for p in passages)]


def none_answers(retriever: Retriever, items: Sequence[LabelledQuery]) -> list[bool]:
    """Whether each query gets the "none fits" answer: the fit model's, the same in every mode."""
    return [assess(retriever, item.query).none_fits for item in items]


def evaluate_mode(
    retriever: Retriever,
    items: Sequence[LabelledQuery],
    mode: Mode,
    answered_none: Sequence[bool] | None = None,
) -> ModeResult:
    """``answered_none``: :func:`none_answers` of ``items``, when already known (computed here otherwise)."""
    if answered_none is None:
        answered_none = none_answers(retriever, items)
    for item in items[:WARMUP_QUERIES]:
        retriever.search(item.query, k=MRR_DEPTH, mode=mode)
    hits_at = {k: 0 for k in RECALL_AT}
    reciprocal = 0.0
    latencies: list[float] = []
    cpu: list[float] = []
    misses = []
    none_right = false_none = 0
    for item, none in zip(items, answered_none, strict=True):
        started, started_cpu = time.perf_counter(), time.process_time()
        hits = retriever.search(item.query, k=MRR_DEPTH, mode=mode)
        latencies.append((time.perf_counter() - started) * MS_PER_SECOND)
        cpu.append((time.process_time() - started_cpu) * MS_PER_SECOND)
        rank = rank_none_counted(not item.expect, none, (is_relevant(h.passage, item) for h in hits))
        none_right += none and not item.expect
        false_none += none and bool(item.expect)
        if rank is not None:
            reciprocal += 1.0 / rank
        for k in RECALL_AT:
            hits_at[k] += rank is not None and rank <= k
        if rank is None or rank > 3:
            misses.append(item.query)
    n = len(items)
    return ModeResult(
        mode=mode,
        recall={k: hits_at[k] / n for k in RECALL_AT},
        mrr=reciprocal / n,
        p50_ms=statistics.median(latencies),
        p95_ms=percentile(latencies, 0.95),
        cpu_p50_ms=statistics.median(cpu),
        misses=tuple(misses),
        none_right=none_right,
        false_none=false_none,
    )


def load_average() -> str:
    """The 1-minute load average: latency on a shared 2-core machine means little without it."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def render(results: Sequence[ModeResult], items: Sequence[LabelledQuery], path: Path) -> str:
    lines = [f"retrieval on {len(items)} labelled queries ({path.name}); load average {load_average()}", ""]
    lines.append(
        f"{'mode':8} {'R@1':>6} {'R@3':>6} {'R@5':>6} {'MRR':>6} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8}"
    )
    for r in results:
        lines.append(
            f"{r.mode:8} {r.recall[1]:6.3f} {r.recall[3]:6.3f} {r.recall[5]:6.3f} {r.mrr:6.3f} "
            f"{r.p50_ms:8.1f} {r.p95_ms:8.1f} {r.cpu_p50_ms:8.1f}"
        )
    if results:  # the none answer is the same in every mode
        nones = sum(not item.expect for item in items)
        right, wrong = results[-1].none_right, results[-1].false_none
        lines += ["", f"labelled none: {nones}; answered none: right {right}, wrong (a clause fits) {wrong}"]
    for r in results:
        if r.misses:
            lines += ["", f"{r.mode}: not in the top 3:"] + [f"  - {q}" for q in r.misses]
    return "\n".join(lines)


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(options.set_path) if options.set_path else DEFAULT_SET
    items = load_set(path)
    modes: list[Mode] = [m for m in MODES if m in (options.modes or MODES)]
    needs_dense = any(m != "bm25" for m in modes)
    hybrid = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, mode="hybrid"))
    retriever = open_retriever(hybrid if needs_dense else config)
    broken = unlabelled(items, retriever.passages)
    if broken:
        raise KnowledgeError(f"{len(broken)} labels match no passage, e.g. {broken[0]!r}: fix {path}")
    answered_none = none_answers(retriever, items)
    results = [
        evaluate_mode(retriever, items, mode, answered_none)
        for mode in sorted(modes, key=lambda m: ("dense", "bm25", "hybrid").index(m))
    ]
    data = {
        "set": str(path),
        "queries": len(items),
        "labelled_none": sum(not item.expect for item in items),
        "load_average": load_average(),
        "modes": {
            r.mode: {
                **{f"recall@{k}": round(v, 4) for k, v in r.recall.items()},
                "mrr": round(r.mrr, 4),
                "p50_ms": round(r.p50_ms, 2),
                "p95_ms": round(r.p95_ms, 2),
                "cpu_p50_ms": round(r.cpu_p50_ms, 2),
                "misses_at_3": list(r.misses),
                "none_right": r.none_right,
                "false_none": r.false_none,
            }
            for r in results
        },
    }
    return EvalOutcome(render(results, items, path), data)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", help=f"labelled queries (default: {DEFAULT_SET.relative_to(REPO_DIR)})")
    parser.add_argument("--modes", nargs="+", choices=MODES, help="modes to compare (default: all three)")


register_suite(
    "retrieval",
    run,
    help="recall@1/3/5, MRR and p50/p95 latency of dense, BM25 and hybrid retrieval on eval/retrieval.yaml",
    add_arguments=add_arguments,
)
