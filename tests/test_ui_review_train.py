"""The Review and Train views' library side, on a real SQLite store and the shared calls."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.evaluation import Metric
from copilot.qa.report.html import esc
from copilot.qa.store import EvalRun
from copilot.transcription.audio import SAMPLE_RATE, read_all
from copilot.transcription.transcript_files import read_transcript
from copilot.types import CheckResult, Clause, Evidence
from copilot.ui import review as rv
from copilot.ui import train as tr
from copilot.ui.context import AppContext
from tests.ui_fakes import EchoGenerator, Engines, FakeServices, context


@pytest.fixture(scope="module")
def services() -> FakeServices:
    return Engines().services()


@pytest.fixture
def ctx(tmp_path: Path, services: FakeServices) -> AppContext:
    return context(tmp_path, services)


def failed_checks(html: str) -> set[str]:
    return set(re.findall(r'data-check="([^"]+)" data-passed="false"', html))


def test_reviewing_uploads_stores_them_and_shows_failed_checks_with_evidence(
    ctx: AppContext, shared_dir: Path, tmp_path: Path
) -> None:
    calls = shared_dir / "calls"
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    seen: list[tuple[int, int, str]] = []
    result = rv.review_uploads(
        [calls / "bad_call.json", calls / "good_call.json", junk],
        ctx,
        agent="A017",
        progress=lambda done, total, name: seen.append((done, total, name)),
    )
    assert [c.name for c in result.calls] == ["bad_call.json", "good_call.json"]
    assert len(result.errors) == 1 and result.errors[0].startswith("notes.txt")
    assert seen[0] == (0, 3, "bad_call.json") and seen[-1][0] == 3
    assert [done for done, _total, _name in seen] == [0, 1, 2, 3]  # the bar moves per file, the bad one too
    assert [rv.progress_text(*step) for step in seen] == [
        "正在审核 reviewing 1/3 bad_call.json",
        "正在审核 reviewing 2/3 good_call.json",
        "正在审核 reviewing 3/3 notes.txt",
        "完成 done 3/3",
    ]
    bad, good = result.calls
    stored_failed = {c.id for c in bad.stored.checks if not c.passed}
    assert {"greeting", "closing", "apology", "forbidden"} <= stored_failed
    assert failed_checks(rv.scorecard_html(bad)) == stored_failed
    assert failed_checks(rv.scorecard_html(good)) == {c.id for c in good.stored.checks if not c.passed}
    rows = rv.evidence_rows(result.calls)
    assert {r.call_index for r in rows} == {0} | ({1} if any(c.failed for c in good.stored.checks) else set())
    forbidden = [r for r in rows if r.item == "check forbidden"]
    assert forbidden and all(r.quote and r.clause for r in forbidden)
    assert "您别激动" in " ".join(r.quote for r in forbidden)
    # stored, searchable by agent, text and failed check
    assert {c.id for c in rv.search_reviews(ctx, agent="A017")} == {bad.call_id, good.call_id}
    assert [c.id for c in rv.search_reviews(ctx, failed_check="forbidden")] == [bad.call_id]
    assert [c.id for c in rv.search_reviews(ctx, text="冰箱")] == [bad.call_id]


def test_the_same_call_twice_in_one_batch_gets_one_scorecard(
    ctx: AppContext, shared_dir: Path, tmp_path: Path
) -> None:
    # A file dropped twice (the browser sometimes gives a slow upload again) or a copy under another name.
    original = shared_dir / "calls" / "bad_call.json"
    copy = tmp_path / "bad_call_copy.json"
    copy.write_bytes(original.read_bytes())
    result = rv.review_uploads([original, original, copy, shared_dir / "calls" / "good_call.json"], ctx)
    assert [c.name for c in result.calls] == ["bad_call.json", "good_call.json"]
    assert result.errors == (
        "bad_call.json: the same call as bad_call.json in this batch; shown once",
        "bad_call_copy.json: the same call as bad_call.json in this batch; shown once",
    )
    assert rv.scorecards_html(result.calls).count('class="cp-scorecard"') == 2


def test_reviewing_the_same_upload_again_reuses_the_stored_review(ctx: AppContext, shared_dir: Path) -> None:
    path = shared_dir / "calls" / "bad_call.json"
    first = rv.review_uploads([path], ctx).calls[0]
    again = rv.review_uploads([path], ctx).calls[0]
    assert again.call_id == first.call_id and again.reused and not first.reused
    assert ctx.store.count_calls() == 1


def test_the_transcript_shown_is_redacted(ctx: AppContext, tmp_path: Path) -> None:
    call = {
        "segments": [
            {"role": "agent", "start": 0.0, "end": 2.0, "text": "您好，请问您的手机号？"},
            {"role": "customer", "start": 2.5, "end": 5.0, "text": "我的手机号是13812345678"},
        ]
    }
    path = tmp_path / "private.json"
    path.write_text(json.dumps(call, ensure_ascii=False), encoding="utf-8")
    reviewed = rv.review_uploads([path], ctx).calls[0]
    html = rv.transcript_html(reviewed)
    assert "13812345678" not in html and "我的手机号是" in html


def test_downloads_are_the_report_modules_html_json_and_csv(ctx: AppContext, shared_dir: Path) -> None:
    result = rv.review_uploads([shared_dir / "calls" / "bad_call.json"], ctx)
    files = [Path(f) for f in rv.write_downloads(result.calls)]
    suffixes = sorted(f.suffix for f in files)
    assert suffixes == [".csv", ".html", ".json", ".json"]
    page = next(f for f in files if f.suffix == ".html").read_text(encoding="utf-8")
    assert "Call review: bad_call" in page
    csv_text = next(f for f in files if f.suffix == ".csv").read_text(encoding="utf-8")
    assert "bad_call" in csv_text and "forbidden" in csv_text


def test_an_evidence_clip_is_the_recording_around_that_moment(shared_dir: Path) -> None:
    path = shared_dir / "calls" / "bad_call.wav"
    rate, samples = rv.clip(path, 9.1, 12.76)
    assert rate == SAMPLE_RATE and samples.dtype == np.int16
    assert samples.shape == (round((12.76 - 9.1 + 2 * rv.CLIP_PAD) * SAMPLE_RATE), 2)
    whole, _ = read_all(path)
    lo = int((9.1 - rv.CLIP_PAD) * SAMPLE_RATE)
    expected = (np.clip(whole[:, lo : lo + 100], -1, 1).T * rv.INT16_MAX).astype(np.int16)
    assert np.array_equal(samples[:100], expected)


def test_earlier_reviews_open_from_the_database(ctx: AppContext, shared_dir: Path) -> None:
    reviewed = rv.review_uploads([shared_dir / "calls" / "bad_call.json"], ctx).calls[0]
    opened = rv.open_stored(ctx, reviewed.call_id)
    assert opened.audio is None and failed_checks(rv.scorecard_html(opened)) == failed_checks(
        rv.scorecard_html(reviewed)
    )
    rows = rv.listing_rows(rv.search_reviews(ctx))
    assert rows[0][0] == reviewed.call_id and "forbidden" in str(rows[0][4])


# --- Train ---------------------------------------------------------------------------------------


def test_a_replayed_call_puts_each_suggestion_beside_the_agents_real_reply(
    ctx: AppContext, shared_dir: Path
) -> None:
    transcript = read_transcript(shared_dir / "calls" / "bad_call.json")
    turns = tr.compare_turns(transcript, ctx, use_llm=False)
    customer = [s for s in transcript.segments if s.speaker == "customer"]
    assert [t.customer for t in turns] == [s.text for s in customer]
    # the agent's reply to the first complaint is the forbidden "您别激动…"; its compliance says so
    assert turns[0].actual == "您别激动，这没什么大不了的。"
    assert "forbidden" in turns[0].compliance
    assert all(t.suggestion and t.cites for t in turns)
    assert all(t.similarity is not None and 0.0 <= t.similarity <= 1.0 for t in turns if t.actual)
    # the table's columns say what the reply broke and where the suggestion came from (LLM off: the script)
    cells = turns[0].cells()
    assert cells[5].startswith("✗") and "forbidden" in str(cells[5])
    assert all(str(t.cells()[6]).startswith("手册话术") for t in turns)
    clean = [t for t in turns if t.actual and not t.reply_findings]
    assert all(t.cells()[5] == "✓ 无违规 no rule broken" for t in clean)


def test_a_blocked_suggestion_is_never_suggested_again(ctx: AppContext, shared_dir: Path) -> None:
    transcript = read_transcript(shared_dir / "calls" / "bad_call.json")
    before = tr.compare_turns(transcript, ctx, use_llm=False)
    target = before[0].suggestion
    tr.block(ctx, target, "too generic")
    assert ctx.blocked() == frozenset({target})
    after = tr.compare_turns(transcript, ctx, use_llm=False, blocked=ctx.blocked())
    assert all(t.suggestion != target for t in after)
    assert [row[:2] for row in tr.blocklist_rows(ctx)] == [[target, "too generic"]]


def test_a_blocked_llm_rewrite_falls_back_to_the_script(tmp_path: Path, shared_dir: Path) -> None:
    ctx = context(tmp_path, Engines(generator=EchoGenerator()).services())
    transcript = read_transcript(shared_dir / "calls" / "bad_call.json")
    first = tr.compare_turns(transcript, ctx)[0]
    assert not first.fallback_reason and first.suggestion == "好的，" + first.script  # the rewrite was kept
    tr.block(ctx, first.raw_suggestion)
    again = tr.compare_turns(transcript, ctx, blocked=ctx.blocked())[0]
    assert again.suggestion == again.script and again.fallback_reason == "blocked by a trainer"
    assert all(
        t.suggestion != first.suggestion for t in tr.compare_turns(transcript, ctx, blocked=ctx.blocked())
    )


def test_ratings_are_stored_with_their_comment_and_rater(ctx: AppContext) -> None:
    rating_id = tr.rate(ctx, "您好，请问有什么可以帮您？", "bad", "  too stiff ", rater="trainer1")
    stored = ctx.store.ratings()
    assert [(r.id, r.rating, r.comment, r.rater) for r in stored] == [
        (rating_id, "bad", "too stiff", "trainer1")
    ]
    assert tr.ratings_rows(ctx)[0][:5] == [
        rating_id,
        "bad",
        "您好，请问有什么可以帮您？",
        "too stiff",
        "trainer1",
    ]
    with pytest.raises(tr.UiError):
        tr.rate(ctx, "", "good")


def test_every_registered_suite_is_offered_and_the_flags_suite_runs_and_is_recorded(ctx: AppContext) -> None:
    from copilot.evaluation import suites

    assert tr.suite_names() == sorted(suites())
    outcome, _rows, run_id = tr.run_and_record(ctx, "flags")
    metrics = [m.key for m in tr.suite_metrics(ctx, "flags", outcome)]
    assert any(k.endswith("precision") for k in metrics) and any(k.endswith("recall") for k in metrics)
    assert tr.eval_history_rows(ctx)[0][:2] == [run_id, "flags"]
    with pytest.raises(tr.UiError):
        tr.run_suite("no-such-suite", ctx.config)


def test_a_recording_is_reviewed_under_its_file_name_and_its_evidence_can_be_heard(
    tmp_path: Path, shared_dir: Path
) -> None:
    from tests.fakes_asr import Line, ScriptedTranscriber, write_wav

    calls = shared_dir / "calls"
    script = read_transcript(calls / "bad_call.json")
    seconds = 13.5
    lines = tuple(Line(s.start, s.end, s.text) for s in script.segments if s.end <= seconds)
    audio, _ = read_all(calls / "bad_call.wav")
    upload = tmp_path / "upload-7f3a" / "bad_call_opening.wav"
    upload.parent.mkdir()
    write_wav(upload, audio[:, : int(seconds * SAMPLE_RATE)])
    heard = ScriptedTranscriber(lines, heard_from=read_all(upload)[0])  # finds the lines in packed windows
    services = Engines(transcriber=heard).services()
    ctx = context(tmp_path, services)
    reviewed = rv.review_uploads([upload], ctx).calls[0]
    assert reviewed.stored.summary.name == "bad_call_opening.wav" and reviewed.audio == str(upload)
    said = {(s.segment.speaker, s.segment.text) for s in reviewed.stored.segments}
    assert ("customer", script.segments[1].text) in said  # the right channel is the customer's
    assert any(who == "agent" and "您别激动" in text for who, text in said)
    row = next(r for r in rv.evidence_rows([reviewed]) if r.item == "check forbidden")
    rate, samples = rv.clip(reviewed.audio, row.start, row.end)
    assert (
        rate == SAMPLE_RATE and samples.shape[1] == 2 and len(samples) > (row.end - row.start) * SAMPLE_RATE
    )


# --- Train: the bench (suites described, floors, change, comparison, ratings, unblock) --------------

FLOORS_TOML = """
[flags]
precision = 0.95
recall = 0.93
trap_false_hits = { max = 1 }
"""


def flags_metrics(precision: float | None, recall: float, traps: float) -> list[Metric]:
    return [
        Metric("precision", "flag precision", precision),
        Metric("recall", "flag recall", recall),
        Metric("trap_false_hits", "false flags on traps", traps, "lower", "n"),
        Metric("lines", "lines judged", 63, unit="n"),  # no floor
    ]


def test_each_suite_is_described_by_what_it_measures_on_which_data_and_its_floors(tmp_path: Path) -> None:
    from copilot.evaluation import suites

    path = tmp_path / "floors.toml"
    path.write_text(FLOORS_TOML, encoding="utf-8")
    floors = tr.suite_floors(path)
    about = tr.suite_description("flags", floors)
    assert 'data-suite="flags"' in about and "eval/flags.yaml" in about and "precision/recall" in about
    assert "precision ≥ 0.95" in about and "trap_false_hits ≤ 1" in about
    assert "No floors" in tr.suite_description("latency", floors)
    assert "only when named" in tr.suite_description("judge", floors)  # not part of a bare `copilot eval`
    for name, suite in suites().items():  # every suite has one: its registered help
        assert suite.help and esc(suite.help) in tr.suite_description(name, floors)
    assert tr.suite_description(None) == ""
    with pytest.raises(tr.UiError):
        tr.suite_description("no-such-suite", floors)
    assert tr.suite_floors(tmp_path / "missing.toml") == []  # the app still shows values without floors


def test_the_result_table_shows_each_floor_and_whether_the_value_passes_it(tmp_path: Path) -> None:
    path = tmp_path / "floors.toml"
    path.write_text(FLOORS_TOML, encoding="utf-8")
    floors = tr.suite_floors(path)
    rows = tr.metric_rows("flags", flags_metrics(0.96, 0.9, 2), floors)
    assert rows == [
        ["flag precision", "0.960", "≥ 0.95", "✓ pass", "—"],
        ["flag recall", "0.900", "≥ 0.93", "✗ below floor", "—"],  # a first run: no change
        ["false flags on traps", "2", "≤ 1", "✗ above its maximum", "—"],
        ["lines judged", "63", "—", "—", "—"],  # no floor
    ]
    at_the_floor = tr.metric_rows("flags", flags_metrics(0.95, 0.93, 1), floors)
    assert [r[3] for r in at_the_floor[:3]] == ["✓ pass"] * 3
    assert tr.metric_rows("flags", flags_metrics(None, 1.0, 0), floors)[0][3] == "✗ not measured"
    # floors of another suite do not apply
    assert [r[2:4] for r in tr.metric_rows("retrieval", flags_metrics(0.5, 0.5, 9), floors)] == [
        ["—", "—"]
    ] * 4
    # the shipped floors are the ones `copilot eval --check-floors` reads
    shipped = tr.suite_floors()
    assert any(f.suite == "flags" and f.key == "precision" for f in shipped)


def test_the_change_is_from_the_previous_run_of_the_same_suite_and_configuration(ctx: AppContext) -> None:
    def stored(suite: str, config: str, note: str, **metrics: float) -> int:
        return ctx.store.record_eval_run(EvalRun(suite, metrics, config_hash=config, note=note))

    assert tr.previous_run(ctx, "flags", "cfg-a") is None  # a first run
    stored("flags", "cfg-a", "app", precision=0.9, recall=0.95, trap_false_hits=0)
    newest = stored("flags", "cfg-a", "app", precision=0.94, recall=0.95, trap_false_hits=2)
    stored("flags", "cfg-b", "app", precision=0.5, recall=0.5, trap_false_hits=9)  # another configuration
    stored("flags", "cfg-a", "default quick", precision=0.1, recall=0.1, trap_false_hits=9)  # a --quick run
    stored("retrieval", "cfg-a", "app", mrr=0.8)  # another suite
    before = tr.previous_run(ctx, "flags", "cfg-a")
    assert before is not None and before.id == newest
    assert tr.previous_run(ctx, "flags", "cfg-a", quick=True).metrics["precision"] == 0.1  # type: ignore[union-attr]
    rows = tr.metric_rows("flags", flags_metrics(0.96, 0.95, 1), [], before.metrics)
    assert [r[4] for r in rows] == ["+0.020 better", "same", "−1 better", "—"]  # lines: not in that run
    worse = tr.metric_rows("flags", flags_metrics(0.9, 0.95, 3), [], before.metrics)
    assert [r[4] for r in worse[:3]] == ["−0.040 worse", "same", "+1 worse"]


def test_running_a_suite_twice_stores_both_and_the_second_shows_its_change(ctx: AppContext) -> None:
    _outcome, first, first_id = tr.run_and_record(ctx, "flags")
    keys = [row[0] for row in first]
    assert keys == ["flag precision", "flag recall", "false flags on traps"]
    assert all(row[4] == "—" for row in first)  # nothing stored before
    assert [row[2] for row in first] == ["≥ 0.95", "≥ 0.93", "≤ 1"]  # from eval/floors.toml
    assert all(row[3] in ("✓ pass", "✗ below floor", "✗ above its maximum") for row in first)
    _outcome, second, second_id = tr.run_and_record(ctx, "flags")
    assert second_id > first_id and [row[4] for row in second] == ["same"] * 3  # deterministic suite
    assert [r.id for r in ctx.store.eval_runs("flags")] == [first_id, second_id]
    assert [row[0] for row in tr.eval_history_rows(ctx)] == [second_id, first_id]


def test_two_stored_runs_are_compared_metric_by_metric(ctx: AppContext) -> None:
    a = ctx.store.record_eval_run(
        EvalRun("suggestions", {"relevant": 0.8, "concise": 1.0, "done_p50_ms": 900.0}, "cfg-a", note="app")
    )
    b = ctx.store.record_eval_run(
        EvalRun(
            "suggestions", {"relevant": 0.85, "concise": 1.0, "done_p50_ms": 700.0, "llm_kept": 0.5}, "cfg-b"
        )
    )
    other = ctx.store.record_eval_run(EvalRun("flags", {"precision": 1.0}, "cfg-a"))
    assert tr.compare_stored(ctx, a, b) == [
        ["relevant", "0.800", "0.850", "+0.050 better"],  # eval/floors.toml has a minimum for it
        ["concise", "1", "1", "same"],
        ["done_p50_ms", "900", "700", "−200 better"],  # a latency: lower is better
        ["llm_kept", "—", "0.500", "—"],  # only in run B
    ]
    # without a floor or a latency's name, the direction is unknown: the signed difference only
    assert tr.compare_rows(*ctx.store.eval_runs("suggestions"))[0][3] == "+0.050"
    # the dropdowns list the suite's stored runs, newest first, by time and configuration
    choices = tr.stored_run_choices(ctx, "suggestions")
    assert [value for _label, value in choices] == [b, a]
    assert choices[1][0].startswith(f"#{a} · ") and choices[1][0].endswith("· app · config cfg-a")
    assert tr.stored_run_choices(ctx, None) == []
    with pytest.raises(tr.UiError):
        tr.compare_stored(ctx, a, other)  # runs of two suites
    with pytest.raises(tr.UiError):
        tr.compare_stored(ctx, a, 999)
    assert tr.compare_stored(ctx, a, None) == []


def test_a_rating_has_no_default_and_saving_without_one_stores_nothing(
    ctx: AppContext, shared_dir: Path
) -> None:
    from copilot.ui.app import build_app

    demo = build_app(ctx.config, ctx.services, store=ctx.store, calls_dir=shared_dir / "calls")
    radio = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "train-rating")
    assert radio.value is None
    for missing in (None, "", "ok"):
        with pytest.raises(tr.UiError, match="nothing was saved"):
            tr.rate(ctx, "您好，请问有什么可以帮您？", missing)
    assert ctx.store.ratings() == [] and tr.ratings_rows(ctx) == []


def test_unblocking_takes_a_text_off_the_list_and_it_may_be_suggested_again(
    ctx: AppContext, shared_dir: Path
) -> None:
    # the store: unblock matches as block does (whitespace-insensitive), and says whether it removed one
    ctx.store.block("请您 稍等。", "too curt")
    assert ctx.store.unblock("请您稍等。") and not ctx.store.is_blocked("请您 稍等。")
    assert not ctx.store.unblock("请您稍等。")
    # the view: block a suggestion of a replayed call, list it, unblock it
    transcript = read_transcript(shared_dir / "calls" / "bad_call.json")
    target = tr.compare_turns(transcript, ctx, use_llm=False)[0].suggestion
    tr.block(ctx, target, "too generic")
    tr.block(ctx, "另一条话术。")
    rows = tr.blocklist_rows(ctx)
    assert [r[:2] for r in rows] == [[target, "too generic"], ["另一条话术。", "—"]]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", str(rows[0][2]))
    assert all(
        t.suggestion != target
        for t in tr.compare_turns(transcript, ctx, use_llm=False, blocked=ctx.blocked())
    )
    tr.unblock(ctx, target)
    assert [r[0] for r in tr.blocklist_rows(ctx)] == ["另一条话术。"]
    assert ctx.blocked() == frozenset({"另一条话术。"})
    again = tr.compare_turns(transcript, ctx, use_llm=False, blocked=ctx.blocked())
    assert again[0].suggestion == target  # suggested again
    with pytest.raises(tr.UiError):
        tr.unblock(ctx, target)  # not blocked any more
    with pytest.raises(tr.UiError):
        tr.unblock(ctx, None)


# --- the call's timeline -------------------------------------------------------------------------

SCRIPTED: dict[
    str, Any
] = {  # a short call written for these tests: an announced hold, then unannounced dead air
    "name": "scripted_call",
    "duration": 30.0,
    "segments": [
        {"role": "agent", "start": 0.0, "end": 2.0, "text": "喂，什么事？"},
        {"role": "customer", "start": 2.5, "end": 6.0, "text": "你们这是什么质量！我要投诉！"},
        {"role": "agent", "start": 6.5, "end": 9.0, "text": "您别激动，我帮您查询一下，请您稍等。"},
        {"role": "agent", "start": 15.0, "end": 17.0, "text": "感谢您的耐心等候。"},
        {"role": "customer", "start": 17.5, "end": 18.5, "text": "嗯。"},
        {"role": "agent", "start": 24.5, "end": 26.0, "text": "还有别的问题吗？"},
    ],
}
SEG = re.compile(
    r'<rect class="cp-tl-seg" data-speaker="(\w+)" data-start="([\d.]+)" data-end="([\d.]+)" '
    r'x="([\d.]+)" y="[\d.]+" width="([\d.]+)"'
)
MARK = re.compile(
    r'<g class="cp-tl-finding" data-finding="(\d+)"[^>]*data-findings="([\d ]+)" '
    r'data-start="([\d.]+)" data-end="([\d.]+)"'
)


def scripted(ctx: AppContext, tmp_path: Path, data: dict[str, Any] = SCRIPTED) -> rv.ReviewedCall:
    path = tmp_path / f"{data['name']}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = rv.review_uploads([path], ctx)
    assert not result.errors
    return result.calls[0]


def x_at(seconds: float, duration: float) -> float:
    return rv.TL_LEFT + seconds / duration * (rv.TL_WIDTH - rv.TL_LEFT - rv.TL_RIGHT)


def test_the_timeline_has_one_bar_per_segment_in_its_speakers_lane_at_its_time(
    ctx: AppContext, tmp_path: Path
) -> None:
    call = scripted(ctx, tmp_path)
    svg = rv.timeline_svg(call)
    assert svg.startswith("<svg") and 'viewBox="0 0 480 ' in svg and 'width="100%"' in svg
    bars = SEG.findall(svg)
    said = SCRIPTED["segments"]
    assert [(who, float(a), float(b)) for who, a, b, _x, _w in bars] == [
        (s["role"], s["start"], s["end"]) for s in said
    ]
    for _who, a, b, x, width in bars:
        assert float(x) == pytest.approx(x_at(float(a), 30.0), abs=0.06)
        assert float(x) + float(width) == pytest.approx(x_at(float(b), 30.0), abs=0.11)
    # written out for one bar: the customer's complaint starts 2.5 s into the 30-s call
    assert ("customer", "2.50", "6.00", "70.5", "51.1") in bars
    # the two lanes are two rows: every agent bar above every customer bar
    lane = {
        who: set(re.findall(rf'data-speaker="{who}"[^>]* y="([\d.]+)"', svg)) for who in ("agent", "customer")
    }
    assert len(lane["agent"]) == len(lane["customer"]) == 1 and lane["agent"] != lane["customer"]
    # the announced pause is a hold, the unannounced one silence
    pauses = re.findall(
        r'class="cp-tl-pause" data-kind="(\w+)" data-start="([\d.]+)" data-end="([\d.]+)"', svg
    )
    assert pauses == [("hold", "9.00", "15.00"), ("silence", "18.50", "24.50")]
    # the angry customer's line is marked with its mood
    assert re.search(r'class="cp-tl-mood" data-mood="angry" x="70.5"', svg)


def test_every_finding_is_marked_on_the_timeline_and_clickable_in_the_scorecard_as_its_evidence_row(
    ctx: AppContext, tmp_path: Path, shared_dir: Path
) -> None:
    bad = rv.review_uploads([shared_dir / "calls" / "bad_call.json"], ctx).calls[0]
    calls = (bad, scripted(ctx, tmp_path))
    rows = rv.evidence_rows(calls)
    firsts = rv.first_rows(calls)
    assert firsts == [0, sum(r.call_index == 0 for r in rows)]
    html = rv.scorecards_html(calls)
    for index, call in enumerate(calls):
        page = rv.scorecard_html(call, firsts[index])
        assert page in html
        marks = MARK.findall(page)
        marked = {int(n) for _first, numbers, _a, _b in marks for n in numbers.split()}
        mine = {n for n, r in enumerate(rows) if r.call_index == index}
        assert marked == {n for n in mine if rows[n].moment} and marked
        for first, numbers, a, b in marks:  # a mark plays its own moment
            assert int(first) == int(numbers.split()[0])
            assert all(
                (rows[int(n)].start, rows[int(n)].end) == (float(a), float(b)) for n in numbers.split()
            )
        # each finding in the scorecard is a clickable element carrying its row's number and quote
        clickable = re.findall(
            r'<span class="cp-finding" data-finding="(\d+)"[^>]*><span class="cp-meta">[^<]*</span>([^<]*)</span>',
            page,
        )
        assert {int(n) for n in re.findall(r'class="cp-finding[^"]*" data-finding="(\d+)"', page)} == mine
        assert {int(n) for n, _ in clickable} == {n for n in mine if rows[n].moment}
        for n, text in clickable:
            assert rows[int(n)].quote in text
    forbidden = next(
        n
        for n, r in enumerate(rows)
        if r.call_index == 1 and r.item == "check forbidden" and "您别激动" in r.quote
    )
    mark = next(
        m for m in MARK.findall(rv.scorecard_html(calls[1], firsts[1])) if str(forbidden) in m[1].split()
    )
    assert (mark[2], mark[3]) == ("6.50", "9.00")
    dead_air = [r for r in rows if r.call_index == 1 and r.item == "check silence"]
    assert [(r.start, r.end, r.moment) for r in dead_air] == [(18.5, 24.5, True)]


def test_a_call_without_times_gets_a_note_instead_of_a_timeline_and_no_times_at_all(
    ctx: AppContext, tmp_path: Path
) -> None:
    turns = {
        "name": "chat_log",
        "turns": [
            {"role": "agent", "text": "喂，什么事？"},
            {"role": "customer", "text": "冰箱坏了，你们这是什么质量！"},
            {"role": "agent", "text": "您别激动，这没什么大不了的。"},
        ],
    }
    call = scripted(ctx, tmp_path, turns)
    assert rv.timeline_svg(call) == ""
    page = rv.scorecard_html(call)
    assert '<div class="cp-timeline" data-timed="false"><p class="cp-tl-note">' in page and "<svg" not in page
    assert "没有时间信息" in page
    assert not re.search(r"\d+:\d\d", page + rv.transcript_html(call))  # no 0:00 anywhere
    rows = rv.evidence_rows([call])
    assert rows and all(not r.moment and r.cells(call.name)[3] == "—" for r in rows)
    # findings are still clickable in the scorecard (the player says there is no moment to play)
    assert len(re.findall(r'class="cp-finding[^"]*" data-finding="\d+"', page)) == len(rows)
    # the checks that need times say why they cannot be judged
    assert "无法判断：" in page


def test_an_undecidable_check_shows_its_reason_never_a_time(ctx: AppContext, tmp_path: Path) -> None:
    call = scripted(ctx, tmp_path)
    reason = "录音从中途开始，看不到开场"
    unknown = CheckResult(
        "greeting",
        False,
        (Evidence(0.0, 0.0, "unknown", ""),),
        Clause("doc.txt", "开场", ""),
        reason,
        unknown_reason=reason,
    )
    checks = tuple(unknown if c.id == "greeting" else c for c in call.stored.checks)
    call = dataclasses.replace(call, stored=dataclasses.replace(call.stored, checks=checks))
    page = rv.scorecard_html(call)
    row = re.search(r'<tr class="cp-check cp-unknown" data-check="greeting".*?</tr>', page)
    assert row and f"无法判断：{reason}" in row.group() and "0:00" not in row.group()
    timeline = rv.timeline_html(call)
    assert (
        f'<li class="cp-tl-unknown" data-check="greeting">开场问候：<span class="cp-unknown-reason">无法判断：{reason}'
        in timeline
    )
    assert all(r.item != "check greeting" for r in rv.evidence_rows([call]))
    assert "开场问候" not in rv.timeline_svg(call)  # no mark for it (the mark's tooltip names its checks)
