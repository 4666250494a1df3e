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
        description="Embed every passage of knowledge/passages.jsonl with the configured embedder and write a "
        "FAISS inner-product index with a manifest (embedder, dimension, corpus hash). Skipped when the "
        "existing index still matches, unless --force.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if the index matches")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from copilot.embedding import load_embedder
    from copilot.knowledge import load_passages
    from copilot.retrieval import build_index, default_index_dir, index_problem, read_manifest

    config = config_from_args(args)
    passages = load_passages(Path(config.knowledge_dir))
    embedder = load_embedder(config.embedder)
    directory = default_index_dir()
    problem = index_problem(directory, passages, embedder)
    manifest = read_manifest(directory)
    if problem or args.force or manifest is None:
        manifest = build_index(passages, embedder, directory)
        status = "built"
    else:
        status = "up to date"
    if args.json:
        print_json({"status": status, "path": str(directory), **asdict(manifest)})
    else:
        print(
            f"index {status}: {manifest.passages} passages, {manifest.embedder} ({manifest.dimension}-d), "
            f"corpus {manifest.corpus_hash[:12]} -> {directory}"
        )
    return 0
