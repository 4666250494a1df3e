"""Fakes shared by the store, batch and report tests (no tests here).

``ScriptedReviewer`` reads a real JSON transcript and derives two checks from its text, so what is stored
follows from the input rather than from a fixed answer; ``delay`` makes it slow enough to interrupt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from copilot.transcription.transcript_files import read_transcript
from copilot.types import CallReview, CheckResult, Clause, Evidence, Flag, Segment

GREETING_CLAUSE = Clause("服务规范", "开场", "您好，欢迎致电……我是……")
CLOSING_CLAUSE = Clause("服务规范", "结束", "请问还有其他可以帮您的吗")


def evidence_of(segment: Segment) -> Evidence:
    return Evidence(segment.start, segment.end, segment.speaker, segment.text)


@dataclass
class ScriptedReviewer:
    delay: float = 0.0  # seconds per call
    calls: int = 0  # how many times it reviewed something

    def __call__(self, path: Path) -> CallReview:
        self.calls += 1
        transcript = read_transcript(path)
        if self.delay:
            time.sleep(self.delay)
        agent = [s for s in transcript.segments if s.speaker == "agent"]
        first, last = (agent[0], agent[-1]) if agent else (None, None)
        greeting = first is not None and "您好" in first.text
        closing = last is not None and "其他" in last.text
        checks = (
            CheckResult("greeting", greeting, (evidence_of(first),) if first else (), GREETING_CLAUSE),
            CheckResult(
                "closing",
                closing,
                (evidence_of(last),) if last else (),
                CLOSING_CLAUSE,
                "no closing question",
            ),
        )
        flags = tuple(
            Flag("forbidden", "phrase", "major", "喂 as an opening", (evidence_of(s),), GREETING_CLAUSE)
            for s in agent
            if s.text.startswith("喂")
        )
        score = 100.0 * sum(c.passed for c in checks) / len(checks)
        return CallReview(transcript.source, transcript.duration, transcript.segments, checks, flags, score)


def write_call(path: Path, name: str, agent_lines: list[str], customer_lines: list[str]) -> Path:
    """A small JSON transcript alternating agent and customer lines, 5 s each."""
    import json

    segments = []
    t = 0.0
    for i in range(max(len(agent_lines), len(customer_lines))):
        for role, lines in (("agent", agent_lines), ("customer", customer_lines)):
            if i < len(lines):
                segments.append({"role": role, "start": t, "end": t + 5.0, "text": lines[i]})
                t += 5.5
    path.write_text(json.dumps({"name": name, "segments": segments}, ensure_ascii=False), encoding="utf-8")
    return path
