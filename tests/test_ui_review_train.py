"""The Review and Train views' library side, on a real SQLite store and the shared calls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from copilot.transcription.audio import SAMPLE_RATE, read_all
from copilot.transcription.transcript_files import read_transcript
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
    assert tr.blocklist_rows(ctx) == [[target]]


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
    outcome = tr.run_suite("flags", ctx.config)
    run_id = tr.record_run(ctx, "flags", outcome)
    metrics = dict((str(k), v) for k, v in tr.flat_metrics(outcome.data))
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
    services = Engines(transcriber=ScriptedTranscriber(lines)).services()
    ctx = context(tmp_path, services)
    audio, _ = read_all(calls / "bad_call.wav")
    upload = tmp_path / "upload-7f3a" / "bad_call_opening.wav"
    upload.parent.mkdir()
    write_wav(upload, audio[:, : int(seconds * SAMPLE_RATE)])
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
