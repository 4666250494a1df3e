"""A call session over scripted input: flags as they happen, suggestions per customer turn, redaction."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from copilot.session.call import CallSession, SessionOptions
from copilot.transcription.transcript_files import read_transcript
from copilot.types import Committed, Segment, TentativeText
from tests.fakes_engines import FakeEngines, fake_engines


@pytest.fixture(scope="module")
def engines() -> FakeEngines:
    return fake_engines("好的，我马上为您处理。")


def replay(engines: FakeEngines, call: Path, **options: object) -> CallSession:
    session = CallSession(engines, SessionOptions(background=False, **options))  # type: ignore[arg-type]
    for segment in read_transcript(call).segments:
        session.handle(TentativeText(segment.speaker, segment.start, segment.text[:3]))
        session.handle(Committed(segment))
    session.finish()
    return session


def test_good_call_raises_no_flags_and_suggests_after_every_customer_turn(
    engines: FakeEngines, shared_dir: Path
) -> None:
    session = replay(engines, shared_dir / "calls" / "good_call.json")
    state = session.state()
    assert state.flags == ()
    assert state.missing_steps == ()
    customer_turns = [s for s in state.segments if s.speaker == "customer"]
    assert len(session.records) == len(customer_turns)
    assert all(r.suggestion.final and r.suggestion.cites for r in session.records)
    assert state.tentative == ()  # every tentative line was replaced by its commit
    assert state.agent_pace is not None and 150 < state.agent_pace < 250


def test_bad_call_flags_appear_with_their_clauses(engines: FakeEngines, shared_dir: Path) -> None:
    session = replay(engines, shared_dir / "calls" / "bad_call.json")
    state = session.state()
    rules = {f.rule for f in state.flags}
    assert {"greeting", "forbidden", "interruption"} <= rules
    assert all(f.clause.quote for f in state.flags)
    assert "closing" in state.missing_steps and "apology" in state.missing_steps
    assert state.mood is not None and state.mood.label == "angry"


def test_a_superseded_suggestion_that_ends_last_is_still_waited_for_and_kept_in_turn_order(
    engines: FakeEngines,
) -> None:
    # The first turn's suggestion is cancelled by the second and finishes after it (a slow token on a busy
    # machine): finish() waits for both, and the records stay in the order of the customer's turns.
    second_done = threading.Event()
    real = engines.suggester

    class SlowFirst:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def suggest(self, segments, **kwargs):  # type: ignore[no-untyped-def]
            first = len([s for s in segments if s.speaker == "customer"]) == 1
            if first:
                second_done.wait(5)
            yield from real.suggest(segments, **kwargs)
            if not first:
                second_done.set()

    slow = dataclasses.replace(engines, suggester=SlowFirst())  # type: ignore[arg-type]
    session = CallSession(slow, SessionOptions(background=True, use_llm=False))
    session.add_segment(Segment("customer", 0.0, 2.0, "我等了半天了，你们怎么这么慢"))
    session.add_segment(Segment("customer", 2.5, 4.0, "我家洗衣机不脱水了"))
    session.finish()
    texts = [record.customer.text for record in session.records]
    assert texts == ["我等了半天了，你们怎么这么慢", "我家洗衣机不脱水了"]
    assert session.state().suggestion is not None  # the panel shows the newest turn's suggestion


def test_panel_mood_reads_the_latest_line_with_the_customers_earlier_ones(engines: FakeEngines) -> None:
    session = CallSession(engines, SessionOptions(background=False, use_llm=False))
    session.add_segment(Segment("customer", 0.0, 3.0, "你们这什么破东西,我要投诉"))
    session.add_segment(Segment("agent", 3.5, 5.0, "您好,请问是什么问题"))
    session.add_segment(Segment("customer", 5.5, 9.0, "我家的洗衣机是去年五月买的那台白色的"))
    state = session.state()
    assert state.mood is not None and state.mood.label == "angry"  # no cue of its own: still upset


def test_panel_shows_redacted_text(engines: FakeEngines) -> None:
    session = CallSession(engines, SessionOptions(background=False, use_llm=False))
    session.add_segment(Segment("customer", 0.0, 3.0, "我的手机号是13812345678，洗衣机坏了"))
    state = session.state()
    assert "13812345678" not in state.segments[0].text
    assert state.suggestion is not None and "13812345678" not in state.suggestion.text


def test_a_new_customer_turn_supersedes_the_suggestion(engines: FakeEngines) -> None:
    session = CallSession(engines, SessionOptions(background=True, use_llm=True))
    session.add_segment(Segment("customer", 0.0, 2.0, "我等了半天了，你们怎么这么慢"))
    session.add_segment(Segment("customer", 2.5, 4.0, "我家洗衣机不脱水了"))
    session.finish()
    state = session.state()
    assert state.suggestion is not None and state.suggestion.final
    assert session.records[-1].customer.text == "我家洗衣机不脱水了"
