"""``copilot index``: embed the passages and persist the dense index with its manifest."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict
from pathlib import Path

from copilot.commands._common import config_from_args, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="build the retrieval index of the knowledge base ($COPILOT_HOME/index)",
        description="Embed every passage of knowledge/passages.jsonl (whole, headline, each sentence) and every "
        "phrasing of knowledge/situations.yaml with the configured embedder and write a FAISS inner-product "
        "index with a manifest (embedder, dimension, corpus hash, situations hash). Skipped when the "
        "existing index still matches, unless --force. Situation quotes that match no passage are listed.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the index matches")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from copilot.knowledge import load_passages
    from copilot.knowledge.embedding import load_embedder
    from copilot.knowledge.retrieval import (
        build_index,
        default_index_dir,
        index_problem,
        index_text,
        read_manifest,
    )
    from copilot.knowledge.situations import link_situations, load_situations

    config = config_from_args(args)
    knowledge = Path(config.knowledge_dir)
    passages = load_passages(knowledge)
    situations = load_situations(knowledge)
    unresolved = link_situations(situations, passages, [index_text(p) for p in passages]).unresolved
    embedder = load_embedder(config.embedder)
    directory = default_index_dir(embedder.name)
    problem = index_problem(directory, passages, embedder, situations)
    manifest = read_manifest(directory)
    if problem or args.force or manifest is None:
        manifest = build_index(passages, embedder, directory, situations)
        status = "built"
    else:
        status = "up to date"
    if args.json:
        print_json(
            {
                "status": status,
                "path": str(directory),
                **asdict(manifest),
                "unresolved_clauses": list(unresolved),
            }
        )
    else:
        print(
            f"index {status}: {manifest.passages} passages, {manifest.situations} situations, "
            f"{manifest.views} views, {manifest.embedder} ({manifest.dimension}-d), "
            f"corpus {manifest.corpus_hash[:12]} -> {directory}"
        )
        for item in unresolved:
            print(f"situation clause matches no passage: {item}")
    return 0
