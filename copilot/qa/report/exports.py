"""CSV and JSON exports of a batch's stored reviews."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from copilot.qa.report.dashboard import batch_stats
from copilot.qa.store.records import CallSummary

CSV_COLUMNS = (
    "id",
    "call",
    "file",
    "agent",
    "team",
    "queue",
    "date",
    "duration_s",
    "score",
    "failed_checks",
    "report",
    "content_hash",
    "config_hash",
    "reviewed_at",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # spreadsheet formula injection


def _cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def summary_row(call: CallSummary, report: str = "") -> dict[str, Any]:
    return {
        "id": call.id,
        "call": call.name,
        "file": call.file,
        "agent": call.meta.agent,
        "team": call.meta.team,
        "queue": call.meta.queue,
        "date": call.meta.date,
        "duration_s": round(call.duration, 3),
        "score": round(call.score, 2) if call.scored else call.outcome,
        "failed_checks": list(call.failed_checks),
        "report": report,
        "content_hash": call.content_hash,
        "config_hash": call.config_hash,
        "reviewed_at": call.created_at.isoformat(),
    }


def to_csv(calls: Sequence[CallSummary], links: Mapping[int, str] | None = None) -> str:
    links = links or {}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for call in calls:
        row = summary_row(call, links.get(call.id, ""))
        row["failed_checks"] = ";".join(row["failed_checks"])
        writer.writerow({k: _cell(v) if isinstance(v, str) else v for k, v in row.items()})
    return buffer.getvalue()


def to_json(calls: Sequence[CallSummary], links: Mapping[int, str] | None = None) -> str:
    links = links or {}
    stats = batch_stats(calls)
    document = {
        "calls": [summary_row(c, links.get(c.id, "")) for c in calls],
        "stats": asdict(stats),
    }
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"
