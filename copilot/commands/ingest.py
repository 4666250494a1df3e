"""``copilot ingest``: rebuild the reviewable knowledge base from knowledge/raw/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from copilot.commands._common import config_from_args, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="turn the handbooks in knowledge/raw/ into passages, scripts and vocabulary",
        description="Clean (boilerplate, random-character noise, repeats), section and chunk every handbook in "
        "knowledge/raw/ (txt, md, docx, pdf) plus knowledge/guidelines_custom.md, and write "
        "knowledge/passages.jsonl, scripts.yaml (merged with scripts_custom.yaml), vocabulary.txt and "
        "ingest_report.md. Then run `copilot index`.",
    )
    parser.add_argument("--knowledge", help="knowledge folder (default: the configured knowledge_dir)")
    parser.add_argument("--report", action="store_true", help="print what was dropped, per document")
    parser.add_argument("--dry-run", action="store_true", help="write nothing; show what would be produced")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from copilot.knowledge import ingest

    directory = Path(args.knowledge) if args.knowledge else Path(config_from_args(args).knowledge_dir)
    result = ingest(directory, write=not args.dry_run, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        print_json(
            {
                "documents": [
                    {
                        "source": d.source,
                        "title": d.title,
                        "raw_chars": d.raw_chars,
                        "kept_chars": d.kept_chars,
                        "passages": d.passages,
                        "dropped": {
                            k: sum(1 for x in d.drops if x.kind == k) for k in {x.kind for x in d.drops}
                        },
                    }
                    for d in result.documents
                ],
                "passages": len(result.passages),
                "scripts": len(result.scripts),
                "vocabulary": len(result.vocabulary),
            }
        )
    elif args.report:
        print(result.report)
    else:
        print(
            f"{len(result.passages)} passages, {len(result.scripts)} scripts, {len(result.vocabulary)} domain words"
            f" -> {directory}"
        )
    return 0
