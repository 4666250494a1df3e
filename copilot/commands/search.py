"""``copilot search``: the handbook passages that answer a query (or one query per line of a file)."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable

from copilot.commands._common import config_from_args, print_json, read_lines
from copilot.errors import ConfigError
from copilot.knowledge.retrieval import Assessment
from copilot.transcription.redact import text_redactor
from copilot.types import SearchHit


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="find the handbook passages for a query (situations + passage views + BM25, fused)",
        description="Search the knowledge base. With --json prints one object per query: {query, answer "
        "('passages' or 'none' when no handbook passage fits), fit (calibrated probability that one fits), "
        "situation {key, title, confidence, special}, hits [{rank, id, source, section, quote, text, score}], "
        "closest (when the answer is none: the nearest passages, not answers)}; with --file, one object per "
        "input line (JSONL), loading the models once. A missing or stale index is rebuilt first, with a notice "
        "on stderr (or refused with --no-rebuild).",
    )
    parser.add_argument("query", nargs="?", help="the query text")
    parser.add_argument(
        "--file",
        help="UTF-8 file with one query per line ('-' for stdin); answer N is line N (a blank line: none)",
    )
    parser.add_argument("-k", "--top-k", type=int, dest="k", help="passages per query (default: config)")
    parser.add_argument("--mode", choices=("hybrid", "dense", "bm25"), help="ranking (default: config)")
    parser.add_argument(
        "--no-rebuild", action="store_true", help="refuse a stale index instead of rebuilding"
    )
    parser.add_argument("--json", action="store_true", help="print JSON (JSONL with --file)")
    parser.set_defaults(func=_run)


def hit_dict(hit: SearchHit, rank: int = 0) -> dict[str, object]:
    p = hit.passage
    return {
        "rank": rank,
        "id": p.id,
        "source": p.source,
        "section": p.section,
        "quote": first_sentence(p.text),
        "text": p.text,
        "score": round(hit.score, 6),
    }


def first_sentence(text: str, limit: int = 80) -> str:
    return re.split(r"(?<=[。!?！？;；\n])", text.strip(), maxsplit=1)[0].strip()[:limit]


def answer_dict(found: Assessment, clean: Callable[[str], str]) -> dict[str, object]:
    """The JSON answer for one query: passages, or "none" as a first-class answer; the query as ``clean``
    shows it (redacted unless [privacy] redact is off)."""
    top = found.situations[0] if found.situations else None
    return {
        "query": clean(found.query),
        "answer": "none" if found.none_fits else "passages",
        "fit": round(found.fit, 3),
        "situation": None
        if top is None
        else {
            "key": top.situation.key,
            "title": top.situation.title,
            "confidence": round(top.confidence, 3),
            "special": top.situation.special,
        },
        "hits": [hit_dict(h, rank) for rank, h in enumerate(found.hits, 1)],
        "closest": [hit_dict(h, rank) for rank, h in enumerate(found.closest, 1)],
    }


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    from copilot.knowledge.retrieval import assess, open_retriever

    if (args.query is None) == (args.file is None):
        raise ConfigError("give either a QUERY or --file FILE")
    if args.k is not None and args.k < 1:
        raise ConfigError("-k must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    config = config_from_args(args)
    if args.mode:
        config = dataclasses.replace(config, retrieval=dataclasses.replace(config.retrieval, mode=args.mode))
    # With --file, a blank line is kept and answered none, so that answer N is about line N.
    queries = read_lines(args.file, keep_blank=True) if args.file else [args.query]
    retriever = open_retriever(config, on_stale="refuse" if args.no_rebuild else "rebuild")
    # The query is searched as given and echoed redacted: a caller's line may hold a phone number or an address.
    clean = text_redactor(config.privacy.redact, config.privacy.redact_kinds)
    for query in queries:
        found = assess(retriever, query, k=args.k)
        hits = found.hits
        if args.json:
            print_json(answer_dict(found, clean))
            continue
        print(f"# {clean(query)}")
        if found.none_fits:
            print(f"   none: no handbook passage fits (fit {found.fit:.2f})")
        for rank, hit in enumerate(hits, 1):
            text = hit.passage.text.replace("\n", " ")
            print(f"{rank}. [{hit.score:.4f}] {hit.passage.source} | {hit.passage.section}\n   {text[:160]}")
    return 0
