"""``copilot summarize``: the post-call summary (problem, promises, follow-ups), stored with the review."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from copilot.commands._common import config_from_args, print_json
from copilot.errors import CopilotError
from copilot.qa.summary import PostCallSummary, summarize, summary_text
from copilot.session.engines import Services


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summarize",
        help="post-call summary: problem, promises and deadlines, follow-ups due (stored with the review)",
        description="Summarise calls (JSON transcripts or recordings) in Chinese with the local LLM; promises "
        "and handbook-required follow-ups are extracted from the transcript and cite their clauses.",
    )
    parser.add_argument("calls", nargs="+", metavar="CALL", help="call transcripts (.json) or recordings")
    parser.add_argument("--no-llm", action="store_true", help="extracted facts only, no prose summary")
    parser.add_argument("--no-store", action="store_true", help="do not store the summary in the database")
    parser.add_argument("--json", action="store_true", help="one JSON object per call")
    parser.set_defaults(func=_run)


def _store(services: Services, path: Path, summary: PostCallSummary) -> None:
    """Save the review of the call with the summary attached (one transaction)."""
    from copilot.qa.archive import enforce_retention, save_review
    from copilot.qa.review import review_call
    from copilot.qa.store import Store
    from copilot.qa.store.fingerprint import content_hash, provenance

    review = review_call(_transcript(services, path), engine=services.rules)
    with_summary = _WithSummary(review, summary_text(summary))
    store = Store.open(config=services.config.store)
    try:
        enforce_retention(store, services.config.privacy)
        save_review(
            store,
            with_summary,  # type: ignore[arg-type]
            path=path,
            content_hash=content_hash(path),
            provenance=provenance(services.config),
            privacy=services.config.privacy,
            force=True,
        )
    finally:
        store.close()


class _WithSummary:
    """A review plus its summary, in the shape the store reads."""

    def __init__(self, review: object, summary: str) -> None:
        self._review = review
        self.summary = summary

    def __getattr__(self, name: str) -> object:
        return getattr(self._review, name)


def _transcript(services: Services, path: Path):  # -> Transcript
    from copilot.qa.calls import load_call

    return load_call(path, services)


def _run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    services = Services(config)
    generator = None if args.no_llm else services.generator
    failed = 0
    for call in args.calls:
        path = Path(call)
        try:
            transcript = _transcript(services, path)
            summary = summarize(transcript, services.retriever.passages, generator)
            if not args.no_store:
                _store(services, path, summary)
        except CopilotError as e:  # one bad call is reported; the others are still summarised
            print(f"copilot: error: {call}: {e}", file=sys.stderr)
            failed = max(failed, e.exit_code)
            continue
        if args.json:
            print_json(dataclasses.asdict(summary))
        else:
            print(f"# {call}\n{summary_text(summary)}")
    return failed
