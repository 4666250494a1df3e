"""Post-call summary: the customer's problem, what was promised and by when, follow-ups due.

The facts (promises, follow-ups and the clauses that require them) are extracted deterministically from the
transcript and the handbooks, so they never depend on a small LLM getting them right; the LLM writes the short
Chinese prose summary on top, grounded in the transcript.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from copilot.suggest.guard import promises
from copilot.suggest.llm import ChatMessage, Generator
from copilot.transcription.redact import name_redactor, redact, redact_segments
from copilot.types import Clause, Passage, Segment, Transcript

MAX_TRANSCRIPT_CHARS = 900  # prompt budget: the 0.5B model summarises a short call well within this
SUMMARY_TOKENS = 120
SUMMARY_SYSTEM = (
    "你是家电售后质检助手。阅读通话记录，用中文写三句话的小结："
    "第一句写客户的问题，第二句写坐席的处理和承诺（含时间），第三句写需要的后续跟进。只写记录里有的内容。"
)
VISIT_WORDS = ("上门", "工程师", "师傅", "维修人员")
GUIDANCE_WORDS = ("指导", "操作一下", "试一下", "您试试", "重新启动", "重启", "按住", "设置一下")
COMPLAINT_WORDS = ("投诉", "举报", "差评")
# Handbook clauses behind each follow-up, found by a distinctive substring of the passage.
FOLLOW_UP_CLAUSES = {
    "guidance": "2小时后跟踪回访",
    "complaint": "按时回访客户确认问题解决情况",
    "visit": "回访",
}


@dataclass(frozen=True)
class Promise:
    at: float  # s into the call
    text: str  # the agent's words (redacted)
    commitments: tuple[str, ...]  # the phrases that make it a promise (times, free repair, ...)


@dataclass(frozen=True)
class FollowUp:
    what: str
    due: str
    clause: Clause | None


@dataclass(frozen=True)
class PostCallSummary:
    call: str
    problem: str
    promises: tuple[Promise, ...]
    follow_ups: tuple[FollowUp, ...]
    text: str  # the LLM's prose summary ("" without an LLM)
    model: str
    seconds: float


def customer_problem(segments: Sequence[Segment]) -> str:
    """The customer's first substantive turn: where after-sales callers state the problem."""
    for segment in segments:
        if segment.speaker in ("customer", "unknown") and len(re.sub(r"\W", "", segment.text)) >= 8:
            return segment.text
    return next((s.text for s in segments if s.speaker != "agent"), "")


def agent_promises(segments: Sequence[Segment]) -> list[Promise]:
    found = []
    for segment in segments:
        if segment.speaker != "agent":
            continue
        phrases = promises(segment.text)
        if phrases or any(word in segment.text for word in VISIT_WORDS if "安排" in segment.text):
            found.append(Promise(segment.start, segment.text, tuple(dict.fromkeys(phrases))))
    return found


def _clause(passages: Sequence[Passage], needle: str) -> Clause | None:
    for passage in passages:
        if needle in passage.text:
            return Clause(passage.source, passage.section, passage.text, passage.id)
    return None


def follow_ups(segments: Sequence[Segment], passages: Sequence[Passage]) -> list[FollowUp]:
    agent_text = "".join(s.text for s in segments if s.speaker == "agent")
    customer_text = "".join(s.text for s in segments if s.speaker != "agent")
    due: list[FollowUp] = []
    visit = [p for p in agent_promises(segments) if any(w in p.text for w in VISIT_WORDS)]
    if visit:
        when = "、".join(c for p in visit for c in p.commitments) or "按约定时间"
        due.append(
            FollowUp(
                "按约定安排上门服务，并在服务后回访", when, _clause(passages, FOLLOW_UP_CLAUSES["visit"])
            )
        )
    elif any(word in agent_text for word in GUIDANCE_WORDS):
        due.append(
            FollowUp(
                "电话指导后跟踪回访用户使用情况", "2小时后", _clause(passages, FOLLOW_UP_CLAUSES["guidance"])
            )
        )
    if any(word in customer_text for word in COMPLAINT_WORDS):
        due.append(
            FollowUp(
                "投诉登记升级，按时回访确认问题解决",
                "按投诉时限",
                _clause(passages, FOLLOW_UP_CLAUSES["complaint"]),
            )
        )
    return due


def transcript_for_prompt(transcript: Transcript) -> str:
    names = {"agent": "坐席", "customer": "客户", "unknown": "说话人"}
    lines = [f"{names[s.speaker]}：{s.text}" for s in redact_segments(transcript.segments)]
    text = "\n".join(lines)
    return (
        text
        if len(text) <= MAX_TRANSCRIPT_CHARS
        else text[: MAX_TRANSCRIPT_CHARS // 2] + "\n…\n" + text[-MAX_TRANSCRIPT_CHARS // 2 :]
    )


def summarize(
    transcript: Transcript,
    passages: Sequence[Passage],
    generator: Generator | None,
    *,
    stop: threading.Event | None = None,
) -> PostCallSummary:
    started = time.monotonic()
    text = ""
    if generator is not None:
        messages = [
            ChatMessage("system", SUMMARY_SYSTEM),
            ChatMessage("user", "通话记录：\n" + transcript_for_prompt(transcript) + "\n小结："),
        ]
        text = "".join(generator.stream(messages, max_new_tokens=SUMMARY_TOKENS, stop=stop)).strip()
    return PostCallSummary(
        call=name_redactor(True)(transcript.source),
        problem=redact(customer_problem(transcript.segments)),
        promises=tuple(
            Promise(p.at, redact(p.text), p.commitments) for p in agent_promises(transcript.segments)
        ),
        follow_ups=tuple(follow_ups(transcript.segments, passages)),
        text=redact(text),
        model=generator.name if generator is not None else "",
        seconds=round(time.monotonic() - started, 2),
    )


def summary_text(summary: PostCallSummary) -> str:
    """One stored text: the prose and the extracted facts, for the database and reports."""
    lines = [f"问题：{summary.problem}"]
    lines += [f"承诺（{p.at:.0f}s）：{p.text}" for p in summary.promises]
    lines += [f"跟进：{f.what}（{f.due}）" for f in summary.follow_ups]
    if summary.text:
        lines.append(f"小结：{summary.text}")
    return "\n".join(lines)
