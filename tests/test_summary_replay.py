"""Post-call summary facts and the trainer's replay, over the shared call transcripts (fake LLM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.evaluation.turn_by_turn import actual_reply, replay_call
from copilot.knowledge import load_passages
from copilot.qa.summary import summarize
from copilot.transcription.transcript_files import read_transcript
from copilot.types import Segment
from tests.fakes_engines import FakeEngines, fake_engines
from tests.fakes_llm import ScriptedGenerator


@pytest.fixture(scope="module")
def engines() -> FakeEngines:
    return fake_engines("好的，我这就为您处理。")


def test_good_call_summary_has_problem_promise_and_visit_follow_up(shared_dir: Path) -> None:
    transcript = read_transcript(shared_dir / "calls" / "good_call.json")
    generator = ScriptedGenerator(["客户洗衣机不能脱水。坐席确认保修并安排明天上午上门。需按时上门并回访。"])
    summary = summarize(transcript, load_passages(), generator)
    assert "脱水" in summary.problem
    commitments = [c for p in summary.promises for c in p.commitments]
    assert "明天" in commitments and "免费" in commitments
    assert any("上门" in f.what for f in summary.follow_ups)
    assert all(f.clause is not None for f in summary.follow_ups)
    assert summary.text.startswith("客户洗衣机")
    prompt = generator.calls[0][-1].content
    assert "坐席：" in prompt and "客户：" in prompt


def test_complaint_gives_a_complaint_follow_up_without_llm(shared_dir: Path) -> None:
    transcript = read_transcript(shared_dir / "calls" / "bad_call.json")
    summary = summarize(transcript, load_passages(), None)
    assert "冰箱" in summary.problem
    assert any("投诉" in f.what for f in summary.follow_ups)
    assert summary.text == "" and summary.model == ""


def test_actual_reply_joins_agent_segments_until_the_customer_speaks() -> None:
    segments = [
        Segment("customer", 0, 2, "我的冰箱坏了"),
        Segment("agent", 2.5, 4, "非常抱歉。"),
        Segment("agent", 4.2, 6, "请问型号是多少？"),
        Segment("customer", 6.5, 8, "BCD二百"),
    ]
    assert actual_reply(segments[0], segments) == "非常抱歉。请问型号是多少？"
    assert actual_reply(segments[3], segments) == ""


def test_replay_lists_every_customer_turn_with_the_agents_real_reply(
    engines: FakeEngines, shared_dir: Path
) -> None:
    transcript = read_transcript(shared_dir / "calls" / "bad_call.json")
    turns = replay_call(transcript, engines)
    customer = [s for s in transcript.segments if s.speaker == "customer"]
    assert [t.customer for t in turns] == customer
    assert all(t.suggestion.text for t in turns)
    assert all(t.suggestion_flags == () for t in turns)  # the guard never lets a rule-breaking text out
    assert "forbidden" in turns[0].actual_flags  # 您别激动 / 这没什么大不了的
    assert all(0.0 <= t.similarity <= 1.0 for t in turns)
