"""Reports of stored reviews: per-call HTML, per-batch dashboard, CSV and JSON exports."""

from copilot.qa.report.call_page import call_json, render_call_html
from copilot.qa.report.dashboard import BatchStats, GroupStats, batch_stats, render_dashboard_html
from copilot.qa.report.exports import to_csv, to_json
from copilot.qa.report.files import atomic_write_text, remove_partials, report_stem

__all__ = [
    "BatchStats",
    "GroupStats",
    "atomic_write_text",
    "batch_stats",
    "call_json",
    "remove_partials",
    "render_call_html",
    "render_dashboard_html",
    "report_stem",
    "to_csv",
    "to_json",
]
