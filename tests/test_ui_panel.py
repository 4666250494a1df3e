"""The live panel as a pure function of PanelState: tested on real session output, no browser."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from copilot.session.call import CallSession, PanelState, SessionOptions
from copilot.suggest.engine import Cite, Latency, Suggestion
from copilot.transcription.transcript_files import read_transcript
from copilot.types import Committed, Segment, TentativeText
from copilot.ui.live import playbook_steps
from copilot.ui.panel import EMPTY_STATE, render_idle, render_pace, render_panel
from tests.ui_fakes import Engines, FakeServices


@pytest.fixture(scope="module")
def services() -> FakeServices:
    return Engines().services()


def replayed(services: FakeServices, call: Path) -> CallSession:
    session = CallSession(services, SessionOptions(background=False))
    for segment in read_transcript(call).segments:
        session.handle(Committed(segment))
    session.finish()
    return session


def lines(html: str, speaker: str) -> list[str]:
    return re.findall(rf'class="cp-seg cp-{speaker}[^"]*"[^>]*>.*?<span class="cp-text">(.*?)</span>', html)


def test_good_call_panel_shows_both_parties_apart_a_cited_suggestion_and_a_complete_checklist(
    services: FakeServices, shared_dir: Path
) -> None:
    call = shared_dir / "calls" / "good_call.json"
    session = replayed(services, call)
    view = render_panel(session.state(), steps=playbook_steps(services.rules), source="good_call.json · max")
    transcript = read_transcript(call)
    agent = [s.text for s in transcript.segments if s.speaker == "agent"]
    customer = [s.text for s in transcript.segments if s.speaker == "customer"]
    assert lines(view.transcript, "agent") == agent
    assert lines(view.transcript, "customer") == customer
    suggestion = session.state().suggestion
    assert suggestion is not None and suggestion.cites
    assert f"cites: {suggestion.cites[0].id}" in view.suggestion
    top = suggestion.cites[0]
    assert f'data-passage="{top.id}"' in view.guideline and top.source in view.guideline
    assert view.checklist_complete and 'data-complete="true"' in view.checklist
    assert 'data-step="greeting" data-state="done"' in view.checklist
    assert 'data-step="closing" data-state="done"' in view.checklist
    assert "cp-empty" in view.flags  # a good call raises no flag
    assert view.finished and 'data-finished="true"' in view.status
    assert "good_call.json · max" in view.status


def test_bad_call_panel_shows_flags_with_clauses_mood_and_missing_steps(
    services: FakeServices, shared_dir: Path
) -> None:
    session = replayed(services, shared_dir / "calls" / "bad_call.json")
    state = session.state()
    view = render_panel(state, steps=playbook_steps(services.rules))
    for flag in state.flags:
        assert f'data-rule="{flag.rule}"' in view.flags
    assert 'data-rule="forbidden"' in view.flags and 'data-rule="greeting"' in view.flags
    chips = re.findall(
        r'<span class="cp-flag cp-chip[^"]*"[^>]*title="([^"]*)"[^>]*>(.*?)</span></span>', view.flags
    )
    assert len(chips) == len(state.flags)
    # every flag chip carries its handbook clause (shown with the details, and in its tooltip)
    assert all('class="cp-quote cp-details"' in chip and "手册" in tip for tip, chip in chips)
    assert 'data-mood="angry"' in view.mood
    assert not view.checklist_complete
    assert 'data-step="closing" data-state="missing"' in view.checklist
    assert 'data-step="apology" data-state="missing"' in view.checklist


def test_tentative_text_is_grey_and_after_the_committed_lines() -> None:
    state = dataclasses.replace(
        EMPTY_STATE,
        segments=(Segment("agent", 0.0, 2.0, "您好，欢迎致电"),),
        tentative=(TentativeText("customer", 2.5, "我家冰箱"),),
    )
    html = render_panel(state).transcript
    assert html.index("您好，欢迎致电") < html.index("我家冰箱")
    assert re.search(r'class="cp-seg cp-customer cp-tentative"[^>]*>.*我家冰箱', html)
    assert "cp-tentative" not in html.split("我家冰箱")[0].split("您好")[0]


def _suggestion(**changes: object) -> Suggestion:
    base = Suggestion(
        script="您好，请问有什么可以帮您？",
        text="您好，请问有什么可以帮您？",
        cites=(Cite("hb-001", "接听电话时应主动问候。", "客服手册", "一、接听"),),
        fallback=True,
        reason="",
        latency_ms=Latency(script=12.0),
        final=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_suggestion_shows_the_script_at_once_then_the_streaming_rewrite_then_the_outcome() -> None:
    at_once = render_panel(dataclasses.replace(EMPTY_STATE, suggestion=_suggestion())).suggestion
    assert 'data-state="streaming"' in at_once and "您好，请问有什么可以帮您？" in at_once
    streaming = _suggestion(streaming_text="您好，这里是")
    html = render_panel(dataclasses.replace(EMPTY_STATE, suggestion=streaming)).suggestion
    assert "您好，这里是" in html and "cp-cursor" in html and "请问有什么可以帮您" in html
    kept = _suggestion(text="您好，我来帮您查。", fallback=False, final=True)
    html = render_panel(dataclasses.replace(EMPTY_STATE, suggestion=kept)).suggestion
    assert 'data-state="rewrite"' in html and "您好，我来帮您查。" in html and "cites: hb-001" in html
    refused = _suggestion(final=True, reason="breaks rule(s): forbidden:calm_down")
    html = render_panel(dataclasses.replace(EMPTY_STATE, suggestion=refused)).suggestion
    assert 'data-state="fallback"' in html and "breaks rule(s): forbidden:calm_down" in html


def test_guideline_is_the_top_cited_passage_with_its_section_and_the_document_as_a_detail() -> None:
    html = render_panel(dataclasses.replace(EMPTY_STATE, suggestion=_suggestion())).guideline
    assert "手册 · 一、接听" in html and "接听电话时应主动问候。" in html
    # the handbook's file name and the passage id are details for trainers, not shown to agents by default
    assert '<div class="cp-details">客服手册 [hb-001]</div>' in html


def test_text_from_the_call_is_escaped() -> None:
    state = dataclasses.replace(
        EMPTY_STATE,
        segments=(Segment("customer", 0.0, 1.0, '<script>alert("x")</script>'),),
        errors=("suggestion failed: <b>boom</b>",),
    )
    view = render_panel(state)
    assert "<script>" not in view.transcript and "&lt;script&gt;" in view.transcript
    assert "<b>boom</b>" not in view.errors and "&lt;b&gt;boom" in view.errors


@pytest.mark.parametrize(("pace", "verdict"), [(150.0, "slow"), (200.0, "ok"), (260.0, "fast")])
def test_pace_gauge_places_the_agent_against_the_target_band(pace: float, verdict: str) -> None:
    html = render_pace(pace, (180.0, 220.0))
    assert f"cp-pace-{verdict}" in html and f'data-pace="{pace:.0f}"' in html
    marker = float(re.search(r'cp-marker" style="left:([\d.]+)%', html).group(1))  # type: ignore[union-attr]
    band = re.search(r'cp-band" style="left:([\d.]+)%;width:([\d.]+)%', html)
    assert band is not None
    left, width = float(band.group(1)), float(band.group(2))
    inside = left <= marker <= left + width
    assert inside == (verdict == "ok")


def test_no_pace_yet_and_no_mood_yet_render_placeholders() -> None:
    view = render_panel(EMPTY_STATE)
    assert "cp-empty" in view.pace and "180–220" in view.pace
    assert "cp-empty" in view.mood and view.errors == ""


def test_the_checklist_lists_unknown_missing_steps_too() -> None:
    state: PanelState = dataclasses.replace(EMPTY_STATE, missing_steps=("verification",))
    html = render_panel(state).checklist
    assert 'data-step="verification" data-state="missing"' in html and 'data-complete="false"' in html


def test_before_any_call_the_panel_says_so_and_every_required_step_is_open(services: FakeServices) -> None:
    steps = playbook_steps(services.rules)
    view = render_idle(steps)
    assert 'data-idle="true"' in view.status
    required = [s.id for s in steps if not s.conditional]
    assert required and all(f'data-step="{s}" data-state="missing"' in view.checklist for s in required)
