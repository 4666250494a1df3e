"""Reports from stored reviews: escaping, plots, aggregates, exports, atomic files, metadata."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from copilot.qa.metadata import CallMetadata, MetadataError, load_metadata
from copilot.qa.report import (
    atomic_write_text,
    batch_stats,
    call_json,
    remove_partials,
    render_call_html,
    render_dashboard_html,
    to_csv,
    to_json,
)
from copilot.qa.report.files import PARTIAL_PREFIX
from copilot.qa.report.plots import pace
from copilot.qa.store import CallSummary, StoredCall, StoredSegment
from copilot.types import CheckResult, Clause, Evidence, Flag, Segment

CLAUSE = Clause("服务规范", "4.1", "禁止使用<不耐烦>的语气")
INJECTION = "<script>alert(1)</script>"


def _summary(i: int, agent: str, team: str, score: float, failed: tuple[str, ...] = ()) -> CallSummary:
    return CallSummary(
        id=i,
        name=f"call{i}",
        file=f"/in/call{i}.json",
        content_hash=f"{i:064d}",
        config_hash="f" * 64,
        duration=120.0,
        score=score,
        meta=CallMetadata(agent=agent, team=team),
        created_at=datetime(2024, 1, 31, tzinfo=UTC),
        failed_checks=failed,
    )


def _call(moods: bool) -> StoredCall:
    segments = (
        StoredSegment(Segment("agent", 0.0, 6.0, "您好，欢迎致电美家电器，我是客服小李"), ""),
        StoredSegment(Segment("customer", 6.5, 10.0, f"你们太差了{INJECTION}"), "angry" if moods else ""),
        StoredSegment(Segment("agent", 10.5, 13.0, "您别激动"), ""),
        StoredSegment(Segment("customer", 13.5, 16.0, "好吧谢谢"), "satisfied" if moods else ""),
    )
    evidence = (Evidence(10.5, 13.0, "agent", "您别激动"),)
    return StoredCall(
        summary=_summary(7, "A<1>", "north", 50.0, ("apology",)),
        model_versions={"asr": "whisper-base@sha256:abc"},
        config={},
        segments=segments,
        checks=(
            CheckResult("greeting", True, (), CLAUSE),
            CheckResult("apology", False, evidence, CLAUSE, f"no apology {INJECTION}"),
        ),
        flags=(Flag("forbidden", "phrase", "major", "您别激动", evidence, CLAUSE),),
    )


def test_call_page_escapes_text_and_embeds_plots() -> None:
    page = render_call_html(_call(moods=True))
    assert INJECTION not in page and "&lt;script&gt;" in page
    assert "&lt;不耐烦&gt;" in page and "A&lt;1&gt;" in page
    assert page.count('src="data:image/png;base64,') == 3  # timeline, pace, mood
    assert "0:10–0:13" in page  # evidence times
    assert "http://" not in page and "https://" not in page  # self-contained


def test_call_page_without_mood_labels_says_so() -> None:
    page = render_call_html(_call(moods=False))
    assert page.count('src="data:image/png;base64,') == 2
    assert "customer mood: not available" in page


def test_call_json_has_the_review_shape() -> None:
    data = call_json(_call(moods=True))
    assert {"call", "duration", "segments", "checks", "flags", "score"} <= set(data)
    assert data["checks"][1] == {
        "id": "apology",
        "status": "fail",
        "passed": False,
        "message": f"no apology {INJECTION}",
        "evidence": [{"start": 10.5, "end": 13.0, "speaker": "agent", "text": "您别激动"}],
        "clause": {"document": "服务规范", "section": "4.1", "quote": CLAUSE.quote},
    }
    assert data["segments"][1]["mood"] == "angry"
    json.dumps(data)  # serialisable


def test_pace_is_spoken_characters_per_minute() -> None:
    segment = StoredSegment(Segment("agent", 0.0, 6.0, "一二三四五，六七八九十。一二三四五六七八九十"))
    assert pace(segment) == pytest.approx(20 / 0.1)  # punctuation is not spoken
    assert pace(StoredSegment(Segment("agent", 0.0, 0.5, "好"))) is None  # too short to say


def test_batch_stats_per_agent_and_team() -> None:
    calls = [
        _summary(1, "A1", "north", 40.0, ("apology", "closing")),
        _summary(2, "A1", "north", 60.0, ("apology",)),
        _summary(3, "A2", "south", 100.0),
        _summary(4, "", "", 80.0, ("closing",)),
    ]
    stats = batch_stats(calls)
    assert stats.calls == 4 and stats.mean_score == 70.0 and stats.median_score == 70.0
    assert stats.failed_counts == {"apology": 2, "closing": 2}
    assert stats.call_minutes == 8.0
    agents = {g.name: g for g in stats.per_agent}
    assert (
        agents["A1"].calls == 2 and agents["A1"].mean_score == 50.0 and agents["A1"].most_failed == "apology"
    )
    assert agents["(unknown)"].mean_score == 80.0
    assert stats.per_agent[0].name == "A1"  # weakest first
    assert {g.name: g.calls for g in stats.per_team} == {"north": 2, "south": 1, "(unknown)": 1}


def test_dashboard_links_failures_and_escaping() -> None:
    calls = [_summary(1, "A<b>", "north", 40.0, ("apology",)), _summary(2, "A2", "south", 90.0)]
    page = render_dashboard_html(
        calls, links={1: "calls/call1.html"}, failures=[("/in/x.json", f"TranscriptError: {INJECTION}")]
    )
    assert INJECTION not in page and "A&lt;b&gt;" in page
    assert 'href="calls/call1.html"' in page and "/in/x.json" in page
    assert page.count('src="data:image/png;base64,') == 3  # scores, failed checks, per agent


def test_csv_and_json_exports() -> None:
    calls = [_summary(1, "=cmd()", "north", 40.0, ("apology", "closing")), _summary(2, "A2", "south", 90.0)]
    rows = list(csv.DictReader(io.StringIO(to_csv(calls, {1: "calls/call1.html"}))))
    assert [r["call"] for r in rows] == ["call1", "call2"]
    assert rows[0]["agent"] == "'=cmd()"  # no formula injection in spreadsheets
    assert rows[0]["failed_checks"] == "apology;closing" and rows[0]["report"] == "calls/call1.html"
    document = json.loads(to_json(calls))
    assert document["stats"]["failed_counts"] == {"apology": 1, "closing": 1}
    assert document["calls"][1]["score"] == 90.0


def test_atomic_write_leaves_no_partial_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "r.html"
    atomic_write_text(target, "一")
    atomic_write_text(target, "二")
    assert target.read_text(encoding="utf-8") == "二"
    assert not list(tmp_path.rglob(PARTIAL_PREFIX + "*"))
    (tmp_path / "sub" / f"{PARTIAL_PREFIX}r.html.abc").write_text("half", encoding="utf-8")
    assert remove_partials(tmp_path) == 1 and target.is_file()


def test_metadata_precedence_file_then_sidecar_then_name(tmp_path: Path) -> None:
    meta_csv = tmp_path / "meta.csv"
    meta_csv.write_text(
        "file,agent,team,queue,date\n20240131_A1_repair_x.wav,,,vip,\n,A1,north,,\n,A9,south,,\n",
        encoding="utf-8",
    )
    call = tmp_path / "20240131_A1_repair_x.wav"
    source = load_metadata(str(meta_csv))
    assert source.for_file(call) == CallMetadata(agent="A1", team="north", queue="vip", date="2024-01-31")
    (tmp_path / "20240131_A1_repair_x.meta.json").write_text('{"agent": "A9"}', encoding="utf-8")
    assert source.for_file(call).agent == "A9" and source.for_file(call).team == "south"
    assert load_metadata(None, "").for_file(tmp_path / "other.json") == CallMetadata()


def test_metadata_json_forms_and_errors(tmp_path: Path) -> None:
    keyed = tmp_path / "m.json"
    keyed.write_text('{"c1": {"agent": "A3", "date": "2024-02-01"}}', encoding="utf-8")
    assert load_metadata(str(keyed)).for_file(tmp_path / "c1.json").agent == "A3"
    listed = tmp_path / "l.json"
    listed.write_text('[{"file": "c2.wav", "team": "t"}]', encoding="utf-8")
    assert load_metadata(str(listed)).for_file(tmp_path / "c2.wav").team == "t"
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(MetadataError):
        load_metadata(str(bad))
    with pytest.raises(MetadataError):
        load_metadata(None, "(unclosed")
    with pytest.raises(MetadataError):
        load_metadata(str(tmp_path / "missing.csv"))
