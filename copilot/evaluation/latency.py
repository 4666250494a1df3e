"""``copilot eval latency``: how long the agent waits, with the calls replayed live.

Each stereo call of ``REPO/../shared/calls`` is played at real time (chunks paced by the wall clock,
tentative decodes on) into the same :class:`~copilot.session.call.CallSession` the live panel uses, suggestions
running in the background as they do live. For each customer utterance of the call's script, measured from
the wall-clock moment its scripted end was played:

* commit: the last committed customer segment overlapping the utterance;
* script / first LLM token / done: the suggestion started by that commit (its own latencies are measured
  from the commit, so the two add up).

A suggestion cancelled by the next customer turn counts for script and first token but not for done.
A call whose replay falls more than ``MAX_LAG_SECONDS`` behind the clock is abandoned there (the machine,
or the ASR, is slower than real time; what follows would measure the backlog).
Not part of ``--quick``: it takes the calls' length in wall time (about two minutes).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.config import Config, shared_dir
from copilot.evaluation import EvalContext, EvalOutcome, Metric, SuiteOptions, context_of, register_suite
from copilot.evaluation.metrics import percentile
from copilot.types import Committed, Segment

CALLS_DIR = shared_dir() / "calls"
CALLS = ("good_call", "bad_call")
MS_PER_SECOND = 1000.0
STAGES = ("commit", "script", "first_token", "done")
# s: a replay this far behind the clock measures the machine, not the copilot: the call is abandoned and its
# remaining customer turns count as never committed (bounds the suite's wall time on a slow machine).
MAX_LAG_SECONDS = 30.0


def _overlaps(segment: Segment, line: dict[str, Any]) -> bool:
    return min(segment.end, line["end"]) - max(segment.start, line["start"]) > 0


def _warm(context: EvalContext) -> None:
    """Load every engine and pay the first suggestion's one-off costs, as the app does before a call."""
    services = context.services
    _ = services.live_transcriber, services.rules
    services.suggester.warm()


@dataclass(frozen=True)
class CallLatency:
    rows: list[dict[str, Any]]  # per committed customer utterance: stage -> ms after its scripted end
    missed: list[str]  # customer utterances never committed
    abandoned_at: float | None = None  # s of call audio when the replay fell too far behind and stopped


def measure_call(
    name: str, context: EvalContext, partial: Any, use_llm: bool, speed: float = 1.0
) -> CallLatency:
    """Replay one call live and time every scripted customer utterance."""
    from copilot.session.call import CallSession, SessionOptions
    from copilot.transcription.playback import EndOfAudio, ReplayOptions, replay

    services = context.services
    session = CallSession(services, SessionOptions(redact=False, use_llm=use_llm, background=True))
    commits: list[tuple[float, Segment]] = []
    abandoned_at: float | None = None
    started = time.monotonic()
    events = replay(
        CALLS_DIR / f"{name}.wav",
        context.config.asr,
        services.live_transcriber,
        ReplayOptions(speed=speed),
        partial_transcriber=partial,
    )
    for timed in events:
        if isinstance(timed.event, EndOfAudio):
            break
        wall = time.monotonic() - started
        if isinstance(timed.event, Committed) and timed.event.segment.speaker == "customer":
            commits.append((wall, timed.event.segment))
        session.handle(timed.event)
        if wall - timed.audio_time / speed > MAX_LAG_SECONDS:
            abandoned_at = timed.audio_time
            break
    close = getattr(events, "close", None)  # a generator: stop decoding the rest of the call
    if close is not None:
        close()
    session.finish()
    records = {id(r.customer): r.suggestion for r in session.records}
    script = json.loads((CALLS_DIR / f"{name}.json").read_text(encoding="utf-8"))["segments"]
    rows, missed = [], []
    for line in script:
        if line["role"] != "customer":
            continue
        mine = [(wall, seg) for wall, seg in commits if _overlaps(seg, line)]
        if not mine:
            missed.append(f"{name} {line['start']} s: {line['text']}")
            continue
        wall, segment = max(mine, key=lambda item: item[0])
        commit_ms = (wall - line["end"] / speed) * MS_PER_SECOND
        row: dict[str, Any] = {"call": name, "text": line["text"], "commit": round(commit_ms, 1)}
        suggestion = records.get(id(segment))
        timing = suggestion.latency_ms if suggestion else None
        cancelled = suggestion is not None and suggestion.reason.startswith("cancelled")
        for stage in ("script", "first_token", "done"):
            value = getattr(timing, stage) if timing else None
            if stage == "done" and cancelled:
                value = None
            row[stage] = round(commit_ms + value, 1) if value is not None else None
        row["cancelled"] = cancelled
        rows.append(row)
    return CallLatency(rows, missed, abandoned_at)


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    from copilot.transcription.asr import load_domain_transcriber

    context = context_of(options, config)
    use_llm = config.llm.enabled and not options.no_llm
    _warm(context)
    live = config.asr.for_live()
    partial = None  # None: the live transcriber decodes the partials too (it is greedy by default)
    partial_config = live.for_partials()
    if partial_config is not None:
        partial = load_domain_transcriber(partial_config, Path(config.knowledge_dir))
    rows: list[dict[str, Any]] = []
    missed: list[str] = []
    abandoned: dict[str, float] = {}
    for name in CALLS:
        call = measure_call(name, context, partial, use_llm)
        rows += call.rows
        missed += call.missed
        if call.abandoned_at is not None:
            abandoned[name] = round(call.abandoned_at, 1)
    stats: dict[str, Any] = {}
    for stage in STAGES:
        values = [row[stage] for row in rows if row[stage] is not None]
        stats[stage] = {
            "n": len(values),
            "p50_ms": round(statistics.median(values), 1) if values else None,
            "p95_ms": round(percentile(values, 0.95), 1) if values else None,
        }
    data = {
        "suite": "latency",
        "calls": list(CALLS),
        "llm": config.llm.model if use_llm else "",
        "utterances": len(rows) + len(missed),
        "never_committed": missed,
        "abandoned_at_s": abandoned,
        "max_lag_s": MAX_LAG_SECONDS,
        "stages": stats,
        "rows": rows,
    }
    return EvalOutcome(render(data), data)


def render(data: dict[str, Any]) -> str:
    rows = [
        f"latency: {data['utterances']} customer utterances of {', '.join(data['calls'])} replayed at real time "
        f"(ms after the end of the utterance; LLM {data['llm'] or 'off'})",
        f"  {'stage':12} {'n':>3} {'p50':>8} {'p95':>8}",
    ]
    for stage, s in data["stages"].items():
        p50 = f"{s['p50_ms']:8.0f}" if s["p50_ms"] is not None else f"{'-':>8}"
        p95 = f"{s['p95_ms']:8.0f}" if s["p95_ms"] is not None else f"{'-':>8}"
        rows.append(f"  {stage:12} {s['n']:3d} {p50} {p95}")
    rows += [
        f"  {call}: abandoned at {at} s of audio, more than {data['max_lag_s']:.0f} s behind the clock"
        for call, at in data["abandoned_at_s"].items()
    ]
    rows += [f"  never committed: {m}" for m in data["never_committed"]]
    return "\n".join(rows)


LABELS = {
    "commit": "end of turn -> committed",
    "script": "end of turn -> script",
    "first_token": "end of turn -> first LLM token",
    "done": "end of turn -> suggestion done",
}


def metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    rows = []
    for stage, s in data["stages"].items():
        for q in ("p50", "p95"):
            rows.append(
                Metric(f"{stage}_{q}_ms", f"{LABELS[stage]} {q}", s[f"{q}_ms"], "lower", "ms", s["n"])
            )
    rows.append(
        Metric(
            "never_committed", "customer turns never committed", len(data["never_committed"]), "lower", "n"
        )
    )
    abandoned = len(data["abandoned_at_s"])
    rows.append(Metric("abandoned_calls", "calls abandoned (replay fell behind)", abandoned, "lower", "n"))
    return rows


register_suite(
    "latency",
    run,
    help="calls replayed at real time: end of customer turn -> commit -> script / first LLM token / done",
    metrics=metrics,
    quick=False,
)
