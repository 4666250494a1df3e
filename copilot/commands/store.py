"""``copilot store``: search, show, export and purge the stored reviews (for QA reviewers)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import date
from pathlib import Path
from typing import Any

from copilot.commands._common import config_from_args, print_json
from copilot.config import Config
from copilot.errors import ConfigError
from copilot.qa.store import CallSummary, ReviewFilter, Store, StoredCall
from copilot.types import Clause, Evidence

LIST_LIMIT = 200  # rows `store search` prints unless --limit says otherwise
FILTERS_HELP = (
    "Filters narrow together. Dates are YYYY-MM-DD, inclusive, on the call's date (from metadata), or on "
    "the day it was reviewed when the call's date is unknown. --text matches the stored, redacted "
    "transcript literally (% and _ are not wildcards), ignoring ASCII case: search for [手机号], not for a "
    "number."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "store",
        help="search, show, export and purge stored reviews (the review database)",
        description="The reviews that `copilot review --out` stored, in the database named by $COPILOT_DB, "
        "[store] url or COPILOT_HOME/copilot.db. Text is shown as stored: redacted unless "
        "[privacy] redact = false.",
    )
    actions = parser.add_subparsers(dest="store_command", metavar="ACTION")
    actions.required = True

    search = actions.add_parser(
        "search", help="list stored calls matching filters, newest review first", description=FILTERS_HELP
    )
    _add_filters(search)
    search.add_argument("--limit", default=str(LIST_LIMIT), help=f"at most this many rows ({LIST_LIMIT})")
    search.add_argument("--json", action="store_true", help="print a JSON list of calls")
    search.set_defaults(func=_search)

    show = actions.add_parser("show", help="the stored scorecard of one call (checks, evidence, flags)")
    show.add_argument("call_id", metavar="CALL_ID", help="id from `copilot store search`")
    show.add_argument("--json", action="store_true", help="print the review as JSON (with its transcript)")
    show.set_defaults(func=_show)

    export = actions.add_parser(
        "export",
        help="write every matching call to a CSV or JSON file",
        description="Same columns as a batch's reviews.csv / reviews.json. " + FILTERS_HELP,
    )
    _add_filters(export)
    export.add_argument("--format", choices=("csv", "json"), required=True, help="file format")
    export.add_argument("--out", required=True, metavar="FILE", help="file to write (replaced atomically)")
    export.set_defaults(func=_export)

    purge = actions.add_parser(
        "purge",
        help="delete reviews (and kept recordings) older than the retention period",
        description="Deletes every review stored more than DAYS ago, with all its rows, and the recordings "
        "kept for it under COPILOT_HOME/audio. DAYS defaults to [privacy] retention_days (90); it must be "
        "at least 1, there is no 'keep forever' value: use a large number instead. Each "
        "`copilot review --out` batch applies the same purge first.",
    )
    purge.add_argument("--older-than", metavar="DAYS", help="age in days (default: privacy.retention_days)")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    purge.add_argument("--json", action="store_true", help="print the result as JSON")
    purge.set_defaults(func=_purge)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", default="", help="agent id")
    parser.add_argument("--team", default="", help="team")
    parser.add_argument("--queue", default="", help="queue")
    parser.add_argument("--since", default="", metavar="DATE", help="calls on or after DATE")
    parser.add_argument("--until", default="", metavar="DATE", help="calls on or before DATE")
    parser.add_argument("--min-score", default="", metavar="N", help="score at least N (0-100)")
    parser.add_argument("--max-score", default="", metavar="N", help="score at most N (0-100)")
    parser.add_argument("--failed-check", default="", metavar="ID", help="calls that failed this check")
    parser.add_argument("--text", default="", metavar="WORDS", help="transcript contains WORDS")


# ---- argument values: checked here so that a bad one is a one-line error, not a usage dump -------------


def _day(value: str, option: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as e:
        raise ConfigError(f"{option} must be a date like 2024-01-31, not {value!r}") from e


def _number(value: str, option: str) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError as e:
        raise ConfigError(f"{option} must be a number, not {value!r}") from e
    if not 0 <= number <= 100:
        raise ConfigError(f"{option} must be between 0 and 100, not {value}")
    return number


def _whole(value: str, option: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError as e:
        raise ConfigError(f"{option} must be a whole number, not {value!r}") from e
    if number < minimum:
        raise ConfigError(f"{option} must be at least {minimum}, not {number}")
    return number


def review_filter(args: argparse.Namespace) -> ReviewFilter:
    since, until = _day(args.since, "--since"), _day(args.until, "--until")
    if since and until and since > until:
        raise ConfigError(f"--since {since} is after --until {until}")
    low, high = _number(args.min_score, "--min-score"), _number(args.max_score, "--max-score")
    if low is not None and high is not None and low > high:
        raise ConfigError(f"--min-score {low:g} is above --max-score {high:g}")
    return ReviewFilter(
        agent=args.agent.strip(),
        team=args.team.strip(),
        queue=args.queue.strip(),
        since=since,
        until=until,
        min_score=low,
        max_score=high,
        failed_check=args.failed_check.strip(),
        text=args.text.strip(),
    )


def _open(config: Config) -> Store:
    return Store.open(config=config.store)


# ---- search ---------------------------------------------------------------------------------------


def _row(call: CallSummary) -> dict[str, Any]:
    from copilot.qa.report.exports import summary_row

    row = summary_row(call)
    del row["report"]  # a batch's report link; a listing has none
    return row


def _date(call: CallSummary) -> str:
    return call.meta.date or f"{call.created_at:%Y-%m-%d}*"


def _search(args: argparse.Namespace) -> int:
    where = review_filter(args)
    limit = _whole(args.limit, "--limit", 1)
    with _open(config_from_args(args)) as store:
        calls = store.search(dataclasses.replace(where, limit=limit))
    if args.json:
        print_json([_row(c) for c in calls])
        return 0
    if not calls:
        print("no stored call matches")
        return 0
    print(f"{'id':>6}  {'file':32} {'agent':8} {'team':10} {'date':11} {'score':>5}  failed checks")
    for c in calls:
        name = Path(c.file).name or c.name
        failed = ", ".join(c.failed_checks) or "-"
        print(
            f"{c.id:>6}  {name:32} {c.meta.agent or '-':8} {c.meta.team or '-':10} "
            f"{_date(c):11} {_score(c):>5}  {failed}"
        )
    if any(not c.meta.date for c in calls):
        print("(* date unknown: the day it was reviewed)")
    return 0


# ---- show -----------------------------------------------------------------------------------------


def _evidence_lines(evidence: tuple[Evidence, ...]) -> list[str]:
    return [f"       [{e.start:6.1f}-{e.end:6.1f}] {e.speaker}: {e.text}" for e in evidence]


def _clause_line(clause: Clause) -> list[str]:
    if not (clause.document or clause.quote):
        return []
    return [f"       ({clause.document} {clause.section}: {clause.quote})"]


def _print_call(call: StoredCall) -> None:
    s = call.summary
    print(
        f"# call {s.id}: {s.name} ({s.duration:.1f} s) "
        + (f"score {s.score:.0f}/100" if s.scored else s.outcome)
    )
    print(f"  file {s.file}")
    who = ", ".join(
        f"{label} {value}"
        for label, value in (("agent", s.meta.agent), ("team", s.meta.team), ("queue", s.meta.queue))
        if value
    )
    print(
        f"  {who + '; ' if who else ''}date {s.meta.date or '-'}; reviewed {s.created_at:%Y-%m-%d %H:%M} UTC"
    )
    for check in call.checks:
        mark = {"pass": "PASS", "fail": "FAIL", "unknown": "N/A "}[check.status]
        print(f"  {mark} {check.id:<13} {check.message}")
        lines = _evidence_lines(check.evidence)
        if check.failed:
            lines += _clause_line(check.clause)
        for line in lines:
            print(line)
    for flag in call.flags:
        print(f"  FLAG {flag.severity:<6} {flag.rule} ({flag.kind}): {flag.message}")
        for line in _evidence_lines(flag.evidence) + _clause_line(flag.clause):
            print(line)


def _show(args: argparse.Namespace) -> int:
    call_id = _whole(args.call_id, "CALL_ID", 1)
    with _open(config_from_args(args)) as store:
        call = store.load_call(call_id)
    if args.json:
        from copilot.qa.report import call_json

        print_json({"id": call.summary.id, **call_json(call)})
    else:
        _print_call(call)
    return 0


def _score(call: CallSummary) -> str:
    return f"{call.score:.0f}" if call.scored else call.outcome


# ---- export ---------------------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    from copilot.qa.report import atomic_write_text, to_csv, to_json
    from copilot.qa.store.retention import matching

    where = review_filter(args)
    out = Path(args.out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name a file")
    if out.parent.exists() and not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: {out.parent} is not a folder")
    if not out.parent.exists():  # made, but said: a typo must not create folders unnoticed
        print(f"copilot: creating folder {out.parent}", file=sys.stderr)
    with _open(config_from_args(args)) as store:
        calls = list(matching(store, where))
    text = to_csv(calls) if args.format == "csv" else to_json(calls)
    try:
        atomic_write_text(out, text)
    except OSError as e:
        raise ConfigError(f"cannot write {out}: {e.strerror or e}") from e
    print(f"{len(calls)} call(s) written to {out}")
    return 0


# ---- purge ----------------------------------------------------------------------------------------


def _purge(args: argparse.Namespace) -> int:
    from copilot.config import copilot_home
    from copilot.qa.archive import KEPT_AUDIO_DIR
    from copilot.qa.store.retention import MIN_DAYS, purge

    config = config_from_args(args)
    days = config.privacy.retention_days
    if args.older_than is not None:
        days = _whole(args.older_than, "--older-than", MIN_DAYS)
    with _open(config) as store:
        result = purge(store, days, copilot_home() / KEPT_AUDIO_DIR, dry_run=args.dry_run)
    if args.json:
        print_json(
            {
                "dry_run": result.dry_run,
                "older_than_days": result.older_than_days,
                "cutoff": result.cutoff.isoformat(timespec="seconds"),
                "calls": result.calls,
                "call_ids": list(result.call_ids),
                "audio_files": [str(p) for p in result.audio_files],
            }
        )
    else:
        print(result.describe())
    return 0
