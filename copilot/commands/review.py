"""``copilot review``: the QA scorecard of whole calls (JSON transcripts or recordings)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from copilot.commands._common import config_from_args, print_json, read_lines
from copilot.config import Config
from copilot.errors import ConfigError, CopilotError
from copilot.judgement.engine import RuleEngine
from copilot.judgement.playbook import load_playbook
from copilot.qa.batch import (
    DASHBOARD_FILE,
    BatchOptions,
    PipelineReviewer,
    format_summary,
    run,
    summary_dict,
)
from copilot.qa.jobs import ReviewOne
from copilot.qa.metadata import DEFAULT_NAME_PATTERN
from copilot.qa.review import TRANSCRIPT_SUFFIXES, ReviewOptions, Transcribe, review_dict, review_file
from copilot.qa.store import content_hash
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
    add_batch_arguments(parser)  # --out DIR turns the command into a stored, resumable batch
    parser.set_defaults(func=_run)


def _audio_transcriber(config: Config) -> Transcribe:
    """Load the ASR model once and return a function that transcribes one file with it."""
    from copilot.qa.calls import load_call
    from copilot.session.engines import Services

    services = Services(config)  # ASR with the knowledge base's domain vocabulary, loaded once

    def transcribe(path: Path) -> Transcript:
        return load_call(path, services)

    return transcribe


def _print_human(review: CallReview) -> None:
    score = f"score {review.score:.0f}/100" if review.scored else "not scored"
    print(f"# {review.call} ({review.duration:.1f} s) {score}")
    for check in review.checks:
        mark = {"pass": "PASS", "fail": "FAIL", "unknown": "N/A "}[check.status]
        print(f"  {mark} {check.id:<13} {check.message}")
        if check.failed:
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
        return run_batch(args, inputs=calls)
    config = config_from_args(args)
    engine = RuleEngine(load_playbook(args.playbook))
    options = ReviewOptions(redact=config.privacy.redact, redact_kinds=config.privacy.redact_kinds)
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


# ---- batch mode (--out) -------------------------------------------------------------------------


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The batch options of ``copilot review`` (batch mode is on when ``--out`` is given)."""
    group = parser.add_argument_group("batch mode (with --out)")
    group.add_argument("--out", metavar="DIR", help="review into the database and write reports to DIR")
    group.add_argument(
        "--force", action="store_true", help="review again calls already stored for this configuration"
    )
    group.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="where to review (default: local)"
    )
    group.add_argument("--address", default="", help="Ray cluster address (default: start a local cluster)")
    group.add_argument(
        "--workers", type=int, default=0, help="Ray workers, one model copy each (default: all CPUs)"
    )
    group.add_argument(
        "--meta", metavar="FILE", default="", help="agent/team/queue/date per call (CSV or JSON)"
    )
    group.add_argument(
        "--meta-pattern",
        default=DEFAULT_NAME_PATTERN,
        help="regex with named groups agent/team/queue/date over file names ('' = none)",
    )
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument(
        "--no-reports",
        action="store_true",
        help="store reviews only (report rendering is the driver's main cost)",
    )


def run_batch(
    args: argparse.Namespace, review_one: ReviewOne | None = None, inputs: Sequence[str] | None = None
) -> int:
    """Batch mode of ``copilot review``; returns the exit status. ``inputs`` default to ``args.calls``
    plus the lines of ``args.list_file``; ``review_one`` defaults to :class:`PipelineReviewer`."""
    if inputs is None:
        inputs = list(getattr(args, "calls", []) or [])
        if getattr(args, "list_file", None):
            inputs += read_lines(args.list_file)
    if not inputs:
        raise ConfigError("no calls given (name files, folders or globs, or use --file LIST)")
    if args.workers < 0:
        raise ConfigError("--workers must be 0 (all CPUs) or more")
    config = config_from_args(args)
    playbook = getattr(args, "playbook", None)
    extra: dict[str, Any] = {}
    if playbook:
        try:  # a playbook other than the configured one changes the result: it is configuration
            extra["playbook_file_sha256"] = content_hash(Path(playbook))
        except OSError as e:
            raise ConfigError(f"playbook {playbook}: {e.strerror or e}") from e
    options = BatchOptions(
        out_dir=Path(args.out),
        force=args.force,
        engine=args.engine,
        address=args.address,
        workers=args.workers,
        meta_file=args.meta,
        meta_pattern=args.meta_pattern,
        progress=not args.no_progress,
        reports=not args.no_reports,
        privacy=config.privacy,
    )
    reviewer = review_one or PipelineReviewer(config, playbook)
    summary = run(inputs, reviewer, options, config, extra_provenance=extra)
    if getattr(args, "json", False):
        print_json(summary_dict(summary))
    else:
        print(format_summary(summary))
        print(f"reports: {options.out_dir / DASHBOARD_FILE}")
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return summary.exit_code
