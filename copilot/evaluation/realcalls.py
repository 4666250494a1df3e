"""``copilot eval realcalls``: the judgement on real calls nobody here wrote, against ``eval/realdata`` labels.

Reads ``shared_dir()/realdata`` (the texts never enter the repository). Every labelled phone call and every
helpdesk dialogue is written as the ``turns`` transcript shape (role + text, no times) and reviewed exactly as
``copilot review --json`` would; the numbers are computed from that JSON, as an outside evaluator would:

* agent-line flags: a line is flagged when a flag's evidence quotes it; precision / recall against
  ``agent_lines.tsv`` (every other agent line of a labelled call is ok);
* opening / closing / apology / recap: the check's status (pass / fail / unknown) against ``calls.tsv``;
* customer mood: :func:`copilot.judgement.tone.customer_emotion` in context per line, F1 of upset yes/no and
  per mood against ``customer_lines.tsv``;
* the score: Spearman with the reviewer's grade (``calls.tsv``) and with STC3 customer satisfaction;
* review time for 100 calls.

Numbers are given for the test part (the one nobody tunes on) and the tuning part, next to the previous
release's (``eval/realdata/previous_release.json``, made by ``eval/realcalls_previous.py``).

Method, chosen by measurement: the judgement stays the playbook's rules (handbook clauses, context
exceptions) and the cue lists of :mod:`copilot.judgement.tone`. A logistic regression on e5-small embeddings
trained on the tuning part's customer lines reached upset F1 0.69 on the test part (rules: 0.59), but it is
not shipped: ``../shared/realdata/README.md`` forbids training a shipped model on these texts, and embedding
every line costs ~70 ms here (a 60-line call ~4 s, 100 calls ~7 min against the one-minute budget).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from copilot.config import Config
from copilot.evaluation import EvalOutcome, Metric, SuiteOptions, register_suite
from copilot.evaluation.realdata import (
    HELPDESK,
    LABELS_DIR,
    PHONE_CALLS,
    Dialogue,
    Split,
    dialogues,
    label_rows,
    split_of,
)

BASELINE_FILE = LABELS_DIR / "previous_release.json"
UPSET = frozenset({"angry", "anxious", "distressed"})
MOODS = ("angry", "anxious", "distressed", "calm", "thankful")
MOOD_ALIASES = {"neutral": "calm", "satisfied": "thankful"}  # the labels of releases before issue #17
# calls.tsv outcome -> the check status that agrees with it
OUTCOMES: dict[str, dict[str, str]] = {
    "greeting": {"present": "pass", "missing": "fail", "not_in_transcript": "unknown"},
    "closing": {"present": "pass", "missing": "fail", "not_in_transcript": "unknown"},
    "apology": {"owed_given": "pass", "owed_missing": "fail", "not_owed": "unknown"},
    "recap": {"given": "pass", "missing": "fail"},
}
LABEL_COLUMN = {"greeting": "opening", "closing": "closing", "apology": "apology", "recap": "recap"}
TIMED_CALLS = 100  # review time is reported for this many calls
SPLITS: tuple[Split, ...] = ("test", "tune")


@dataclass(frozen=True)
class Labels:
    calls: dict[str, dict[str, str]]  # id -> calls.tsv row
    agent_lines: dict[tuple[str, int], str]  # violations only
    customer_lines: dict[tuple[str, int], str]  # mood


@dataclass(frozen=True)
class Observation:
    """What the product said about one dialogue: the review JSON and the mood of each customer turn."""

    id: str
    review: dict[str, Any]
    moods: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    satisfaction: float | None = None  # STC3 'S' of a helpdesk dialogue


def load_labels() -> Labels:
    return Labels(
        calls={r["dialogue_id"]: r for r in label_rows("calls.tsv")},
        agent_lines={(r["dialogue_id"], int(r["turn"])): r["label"] for r in label_rows("agent_lines.tsv")},
        customer_lines={
            (r["dialogue_id"], int(r["turn"])): r["mood"] for r in label_rows("customer_lines.tsv")
        },
    )


def chosen_dialogues(labels: Labels | None = None) -> list[Dialogue]:
    """The labelled phone calls, then every helpdesk dialogue."""
    labels = labels or load_labels()
    phone = dialogues(PHONE_CALLS)
    return [phone[i] for i in labels.calls if i in phone] + list(dialogues(HELPDESK).values())


def turns_document(dialogue: Dialogue) -> dict[str, Any]:
    """The dialogue in the ``turns`` transcript shape (role + text, no times), as an outside evaluator writes it."""
    return {"name": dialogue.id, "turns": [{"role": t.role, "text": t.text} for t in dialogue.turns]}


# --- metrics from review JSON ------------------------------------------------------------------------


def outcome(check: Mapping[str, Any]) -> str:
    """pass / fail / unknown of a review JSON check (a release without ``status`` only passes or fails)."""
    status = check.get("status")
    if isinstance(status, str):
        return status
    return "pass" if check.get("passed") else "fail"


def flagged_turns(review: Mapping[str, Any]) -> set[int]:
    """Indices of the agent segments that some flag's evidence quotes."""
    segments = review["segments"]
    quoted = {(e["speaker"], e["text"]) for f in review["flags"] for e in f["evidence"]}
    return {
        i for i, s in enumerate(segments) if s["speaker"] == "agent" and (s["speaker"], s["text"]) in quoted
    }


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    if len(xs) < 3:
        return None
    from scipy.stats import spearmanr

    value = float(spearmanr(xs, ys).statistic)
    return None if value != value else round(value, 3)  # NaN: one side constant


def _ratio(hits: int, total: int) -> float | None:
    return round(hits / total, 3) if total else None


def _f1(pairs: Iterable[tuple[bool, bool]]) -> dict[str, Any]:
    tp = fp = fn = 0
    for truth, guess in pairs:
        tp += truth and guess
        fp += guess and not truth
        fn += truth and not guess
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = (
        round(2 * precision * recall / (precision + recall), 3)
        if precision and recall
        else (0.0 if tp + fn else None)
    )
    return {"precision": precision, "recall": recall, "f1": f1, "n": tp + fn}


def _part(observations: Sequence[Observation], labels: Labels) -> dict[str, Any]:
    calls = [o for o in observations if o.id in labels.calls]
    line_pairs: list[tuple[bool, bool]] = []
    by_label: dict[str, list[bool]] = {}
    for o in calls:
        flagged = flagged_turns(o.review)
        for i, s in enumerate(o.review["segments"]):
            if s["speaker"] != "agent":
                continue
            truth = labels.agent_lines.get((o.id, i))
            line_pairs.append((truth is not None, i in flagged))
            if truth is not None:
                by_label.setdefault(truth, []).append(i in flagged)
    flags = _f1(line_pairs)
    flags["recall_by_label"] = {k: _ratio(sum(v), len(v)) for k, v in sorted(by_label.items())}
    checks: dict[str, Any] = {}
    for check_id, mapping in OUTCOMES.items():
        right = total = 0
        fail_pairs: list[tuple[bool, bool]] = []
        confusion: dict[str, int] = {}
        for o in calls:
            found = next((c for c in o.review["checks"] if c["id"] == check_id), None)
            expected = mapping.get(labels.calls[o.id][LABEL_COLUMN[check_id]])
            if expected is None:
                continue
            got = outcome(found) if found else "missing"
            total += 1
            right += got == expected
            fail_pairs.append((expected == "fail", got == "fail"))
            key = f"{expected}->{got}"
            confusion[key] = confusion.get(key, 0) + 1
        fails = _f1(fail_pairs)
        checks[check_id] = {
            "accuracy": _ratio(right, total),
            "n": total,
            "fail_precision": fails["precision"],
            "fail_recall": fails["recall"],
            "confusion": dict(sorted(confusion.items())),
        }
    mood_pairs: list[tuple[str, str]] = [
        (mood, MOOD_ALIASES.get(o.moods.get(turn, "calm"), o.moods.get(turn, "calm")))
        for o in calls
        for (call, turn), mood in labels.customer_lines.items()
        if call == o.id
    ]
    mood = {
        "upset": _f1((truth in UPSET, guess in UPSET) for truth, guess in mood_pairs),
        "by_mood": {m: _f1((truth == m, guess == m) for truth, guess in mood_pairs)["f1"] for m in MOODS},
    }
    graded = [
        (o.review["score"], float(labels.calls[o.id]["grade"]))
        for o in calls
        if o.review["score"] is not None
    ]
    rated = [
        (o.review["score"], o.satisfaction)
        for o in observations
        if o.satisfaction is not None and o.review["score"] is not None
    ]
    return {
        "calls": len(calls),
        "flags": flags,
        "checks": checks,
        "mood": mood,
        "spearman_grade": spearman([s for s, _ in graded], [g for _, g in graded]),
        "spearman_satisfaction": spearman([s for s, _ in rated], [v for _, v in rated]),
        "helpdesk": len(rated),
        "unscored_calls": sum(o.review["score"] is None for o in calls),
    }


def _with_satisfaction(observations: Sequence[Observation]) -> list[Observation]:
    helpdesk = dialogues(HELPDESK)
    return [
        dataclasses.replace(o, satisfaction=helpdesk[o.id].satisfaction) if o.id in helpdesk else o
        for o in observations
    ]


def summarise(observations: Sequence[Observation], labels: Labels) -> dict[str, Any]:
    """The suite's numbers: per split, the satisfaction correlation on all 600, and the review time."""
    observations = _with_satisfaction(observations)
    out: dict[str, Any] = {s: _part([o for o in observations if split_of(o.id) == s], labels) for s in SPLITS}
    rated = [(o.review["score"], o.satisfaction) for o in observations if o.satisfaction is not None]
    rated = [(s, v) for s, v in rated if s is not None]
    out["spearman_satisfaction_all"] = spearman([s for s, _ in rated], [v for _, v in rated])
    timed = [o.seconds for o in observations if o.id in labels.calls][:TIMED_CALLS]
    out["seconds_per_100_calls"] = round(sum(timed) * TIMED_CALLS / len(timed), 2) if timed else None
    return out


# --- the current code --------------------------------------------------------------------------------


def observe(dialogue: Dialogue, config: Config) -> Observation:
    """Review one dialogue with the current code, through the same JSON as ``copilot review --json``."""
    from copilot.judgement.tone import customer_moods
    from copilot.qa.review import ReviewOptions, review_call, review_dict
    from copilot.transcription.transcript_files import transcript_from_dict

    started = time.perf_counter()
    transcript = transcript_from_dict(turns_document(dialogue), dialogue.id)
    review = review_dict(review_call(transcript, options=ReviewOptions(redact=True, tone=True)))
    seconds = time.perf_counter() - started
    moods = customer_moods(transcript.segments)
    return Observation(dialogue.id, review, {i: m.label for i, m in moods.items()}, seconds)


@dataclass(frozen=True)
class RealCallsResult:
    current: dict[str, Any]
    previous: dict[str, Any]  # {} when no baseline was saved


def evaluate_realcalls(config: Config, *, limit: int | None = None) -> RealCallsResult:
    labels = load_labels()
    chosen = chosen_dialogues(labels)[:limit]
    current = summarise([observe(d, config) for d in chosen], labels)
    previous = json.loads(BASELINE_FILE.read_text(encoding="utf-8")) if BASELINE_FILE.is_file() else {}
    return RealCallsResult(current, previous)


# --- output -------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def table_rows(numbers: Mapping[str, Any], split: Split) -> list[tuple[str, Any]]:
    part = numbers.get(split) or {}
    if not part:
        return []
    rows: list[tuple[str, Any]] = [
        ("agent-line flags precision", part["flags"]["precision"]),
        ("agent-line flags recall", part["flags"]["recall"]),
    ]
    rows += [(f"  recall {k}", v) for k, v in part["flags"]["recall_by_label"].items()]
    for check_id in OUTCOMES:
        c = part["checks"][check_id]
        rows += [
            (f"{check_id} accuracy", c["accuracy"]),
            (f"{check_id} fail precision", c["fail_precision"]),
            (f"{check_id} fail recall", c["fail_recall"]),
        ]
    rows.append(("customer upset F1", part["mood"]["upset"]["f1"]))
    rows += [(f"  mood F1 {m}", part["mood"]["by_mood"].get(m)) for m in MOODS]
    rows += [
        ("Spearman score vs grade", part["spearman_grade"]),
        ("Spearman score vs satisfaction", part["spearman_satisfaction"]),
        ("calls not scored", part["unscored_calls"]),
    ]
    return rows


def render(result: RealCallsResult) -> str:
    cur, prev = result.current, result.previous
    release = prev.get("release", "-")
    lines = []
    for split in SPLITS:
        part = cur[split]
        lines.append(
            f"realcalls, {split} part: {part['calls']} labelled calls, {part['helpdesk']} helpdesk dialogues"
        )
        lines.append(f"  {'':34} {'now':>8} {'prev ' + release:>14}")
        previous = dict(table_rows(prev, split))
        for label, value in table_rows(cur, split):
            lines.append(f"  {label:34} {_fmt(value):>8} {_fmt(previous.get(label)):>14}")
    lines.append(
        f"Spearman score vs satisfaction, all helpdesk: {_fmt(cur['spearman_satisfaction_all'])}"
        f"   (prev {_fmt(prev.get('spearman_satisfaction_all'))})"
    )
    lines.append(
        f"review time for {TIMED_CALLS} calls: {_fmt(cur['seconds_per_100_calls'])} s"
        f"   (prev {_fmt(prev.get('seconds_per_100_calls'))} s)"
    )
    return "\n".join(lines)


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    result = evaluate_realcalls(config, limit=60 if options.quick else None)
    return EvalOutcome(
        render(result), {"suite": "realcalls", "current": result.current, "previous": result.previous}
    )


def metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    test = data["current"]["test"]
    checks = test["checks"]
    return [
        Metric(
            "realcalls_flag_precision", "real calls: agent-line flag precision", test["flags"]["precision"]
        ),
        Metric("realcalls_flag_recall", "real calls: agent-line flag recall", test["flags"]["recall"]),
        Metric("realcalls_opening", "real calls: opening accuracy", checks["greeting"]["accuracy"]),
        Metric("realcalls_closing", "real calls: closing accuracy", checks["closing"]["accuracy"]),
        Metric("realcalls_apology", "real calls: apology accuracy", checks["apology"]["accuracy"]),
        Metric("realcalls_upset_f1", "real calls: customer upset F1", test["mood"]["upset"]["f1"]),
        Metric("realcalls_spearman_grade", "real calls: Spearman score vs grade", test["spearman_grade"]),
        Metric(
            "realcalls_spearman_satisfaction",
            "helpdesk: Spearman score vs satisfaction",
            data["current"]["spearman_satisfaction_all"],
        ),
    ]


register_suite(
    "realcalls",
    run,
    help="the judgement on real calls (../shared/realdata) vs eval/realdata labels, beside the previous release",
    metrics=metrics,
    default=False,
)
