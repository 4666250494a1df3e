"""``copilot review``: the QA scorecard of whole calls (JSON transcripts or recordings)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from copilot.commands._common import config_from_args, print_json, read_lines
from copilot.config import Config
from copilot.errors import ConfigError, CopilotError
from copilot.review import TRANSCRIPT_SUFFIXES, ReviewOptions, Transcribe, review_dict, review_file
from copilot.rules.engine import RuleEngine
from copilot.rules.playbook import load_playbook
from copilot.types import CallReview, Transcript


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review",
        help="score whole calls against the playbook (JSON transcripts or audio)",
        description="Review calls: JSON transcripts shaped like ../shared/calls/*.json (segments with role, "
        "start, end, text) or recordings (stereo: left = agent). Prints checks with evidence and "
        "handbook clauses, flags and a 0-100 score. Personal numbers are redacted unless "
        "[privacy] redact = false.",
    )
    parser.add_argument("calls", nargs="*", metavar="CALL", help="call transcripts (.json) or audio files")
    parser.add_argument("--file", dest="list_file", help="one call path per line ('-': stdin)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per call (JSONL)")
    parser.add_argument("--playbook", help="playbook YAML (default: knowledge/playbook.yaml)")
    from copilot.batch import add_batch_arguments

    add_batch_arguments(parser)  # --out DIR turns the command into a stored, resumable batch
    parser.set_defaults(func=_run)


def _audio_transcriber(config: Config) -> Transcribe:
    """Load the ASR model once and return a function that transcribes one file with it."""
    from copilot.pipeline import load_call
    from copilot.services import Services

    services = Services(config)  # ASR with the knowledge base's domain vocabulary, loaded once

    def transcribe(path: Path) -> Transcript:
        return load_call(path, services)

    return transcribe


def _print_human(review: CallReview) -> None:
    print(f"# {review.call} ({review.duration:.1f} s) score {review.score:.0f}/100")
    for check in review.checks:
        mark = "PASS" if check.passed else "FAIL"
        print(f"  {mark} {check.id:<13} {check.message}")
        if not check.passed:
            for e in check.evidence[:3]:
                print(f"       [{e.start:6.1f}-{e.end:6.1f}] {e.speaker}: {e.text}")
            print(f"       ({check.clause.document} {check.clause.section}: {check.clause.quote})")


def _run(args: argparse.Namespace) -> int:
    calls = list(args.calls)
    if args.list_file:
        calls += read_lines(args.list_file)
    if not calls:
        raise ConfigError("no calls given (name transcript or audio files, or use --file LIST)")
    if args.out:
        from copilot.batch import run_batch

        return run_batch(args, inputs=calls)
    config = config_from_args(args)
    engine = RuleEngine(load_playbook(args.playbook))
    options = ReviewOptions(redact=config.privacy.redact)
    transcribe = None
    if any(Path(c).suffix.lower() not in TRANSCRIPT_SUFFIXES for c in calls):
        transcribe = _audio_transcriber(config)
    worst = 0
    for call in calls:
        try:
            review = review_file(call, engine=engine, options=options, transcribe=transcribe)
        except CopilotError as e:  # one bad file must not stop the batch
            print(f"copilot: error: {e}", file=sys.stderr)
            worst = max(worst, e.exit_code)
            continue
        if args.json:
            out: dict[str, Any] = review_dict(review)
            print_json(out)
        else:
            _print_human(review)
    return worst
