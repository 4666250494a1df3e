"""``copilot eval realsuggest``: suggestions on real customer turns (issue #18), tune and test parts apart.

The 160 labelled turns of ``eval/realdata/suggest_turns.tsv`` (situation, upset, the passages that fit or
``none``), each with the dialogue's earlier turns as context, read from ``shared_dir()/realdata``. Automatic
measures: special-situation scripts on ordinary turns, unfilled templates, forbidden phrases, empathy first
when the customer is upset, retrieval recall@3 / MRR with "none" counted. The rubric (relevant, polite,
say-able as is, no invented promise, cites a passage that fits) is judged by reading, in
``eval/realdata/suggest_rubric.tsv``: a row counts only while the suggestion it judged is unchanged (a short
hash of its text is stored with it).

Beside them, on every labelled caller line of the phone calls (``customer_lines.tsv``, the mood in that line,
read in context), each with the call's earlier turns: how often the suggestion opens with empathy when the
caller is upset, and when they are calm (over-apologising is the cost of reading upset too eagerly).

``--from-jsonl F`` scores the output of ``copilot suggest --file TURNS --json`` (any version, one line per
labelled turn, in the label file's order) instead of running the suggester: how the previous release's
"before" figures are made. ``--dump F`` writes the suggestions with their turns for reading (outside the repo).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.config import Config
from copilot.errors import ConfigError
from copilot.evaluation import EvalOutcome, Metric, SuiteOptions, rate, register_suite
from copilot.evaluation.metrics import p50, rank_none_counted
from copilot.evaluation.realdata import (
    HELPDESK,
    LABELS_DIR,
    PHONE_CALLS,
    Dialogue,
    dialogues,
    label_rows,
    split_of,
)
from copilot.types import Segment

TURNS_FILE = "suggest_turns.tsv"
RUBRIC_FILE = "suggest_rubric.tsv"
RUBRIC_POINTS = ("relevant", "polite", "sayable", "no_invented_promise", "cites_fitting_passage")
LINES_FILE = "customer_lines.tsv"
UPSET_LABELS = frozenset({"angry", "distressed", "anxious"})
RECALL_AT = 3
# Earlier turns written with each suggestion in a dump, for reading (the suggester read them all).
DUMP_CONTEXT = 6
# Script situations (knowledge/scripts.yaml keys, also the older releases') that are special situations:
# used to read outputs that do not say themselves whether a special-situation script was used.
SPECIAL_SCRIPT_KEYS = frozenset(
    {
        "greeting", "silent_line", "weak_voice", "speakerphone", "line_noise", "dialect", "repeat_request",
        "named_colleague", "wrong_number", "harassment", "out_of_scope", "agent_identity", "thanks", "closing",
        "suggestion", "long_information", "surname",
    }
)  # fmt: skip


@dataclass(frozen=True)
class TurnCase:
    dialogue_id: str
    turn: int
    split: str
    situation: str  # a key of knowledge/situations.yaml, or "ordinary"
    upset: bool
    expect: tuple[str, ...]  # substrings of the passages that fit; empty: none fits
    text: str  # the customer's turn
    context: tuple[Segment, ...]  # earlier turns + the turn itself


def suggestion_hash(text: str) -> str:
    """A short hash of a suggestion's text: a rubric row judges this exact text."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def with_context(dialogue: Dialogue, index: int) -> tuple[Segment, ...]:
    """Turn ``index`` of a dialogue after every earlier turn (system turns left out), one second each on a
    made-up clock: the whole call so far, as the live panel's suggester reads it (the callback the agent
    promised ten turns ago is part of the moment)."""
    earlier = [t for t in dialogue.turns[:index] if t.role != "system"]
    return tuple(
        Segment("agent" if t.role == "agent" else "customer", float(i), float(i) + 1.0, t.text)
        for i, t in enumerate([*earlier, dialogue.turns[index]])
    )


def load_cases(labels_dir: Path = LABELS_DIR) -> list[TurnCase]:
    """Every labelled turn with its context (ConfigError when the real dialogues are not there)."""
    cases = []
    for row in label_rows(TURNS_FILE, labels_dir):
        file = PHONE_CALLS if row["dialogue_id"].startswith("musied") else HELPDESK
        dialogue = dialogues(file)[row["dialogue_id"]]
        index = int(row["turn"])
        segments = with_context(dialogue, index)
        expect = () if row["expect"].strip() == "none" else tuple(s.strip() for s in row["expect"].split("|"))
        cases.append(
            TurnCase(
                row["dialogue_id"], index, split_of(row["dialogue_id"]), row["situation"],
                row["upset"] == "yes", expect, dialogue.turns[index].text, segments,
            )
        )  # fmt: skip
    return cases


def caller_line_empathy(suggester: Any, labels_dir: Path = LABELS_DIR) -> dict[str, dict[str, int]]:
    """Per part: labelled caller lines upset / calm, and how many of each got a suggestion opening with empathy."""
    from copilot.suggest.guard import opens_with_empathy

    calls = dialogues(PHONE_CALLS)
    counts = {part: Counter[str]() for part in ("tune", "test")}
    for row in label_rows(LINES_FILE, labels_dir):
        dialogue = calls.get(row["dialogue_id"])
        if dialogue is None:
            continue
        segments = with_context(dialogue, int(row["turn"]))
        kind = "upset" if row["mood"] in UPSET_LABELS else "calm"
        tally = counts[split_of(row["dialogue_id"])]
        tally[kind] += 1
        tally[f"empathy_when_{kind}"] += opens_with_empathy(suggester.choose_script(segments).text)
    return {part: dict(tally) for part, tally in counts.items()}


def read_rubric(path: Path) -> dict[tuple[str, int, str], dict[str, str]]:
    """Rubric rows by (dialogue id, turn, suggestion hash)."""
    if not path.is_file():
        return {}
    rows = label_rows(path.name, path.parent)
    return {(r["dialogue_id"], int(r["turn"]), r["hash"]): r for r in rows}


def fits(expect: Sequence[str], section: str, text: str) -> bool:
    return any(needle in text or needle in section for needle in expect)


def retrieval_rank(case: TurnCase, hits: Sequence[tuple[str, str]], none_fits: bool) -> int | None:
    """Rank of the first fitting passage (1-based), "none" counted (:func:`rank_none_counted`)."""
    return rank_none_counted(
        not case.expect, none_fits, (fits(case.expect, section, text) for section, text in hits)
    )


def read_jsonl(path: Path, expected: int) -> list[Any]:
    """One JSON value per line, one line per labelled turn."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(rows) != expected:
        raise ConfigError(f"{path} has {len(rows)} lines for {expected} labelled turns")
    return rows


def is_special(row: dict[str, Any]) -> bool:
    if "special_situation_script" in row:
        return bool(row["special_situation_script"])
    from copilot.knowledge.scripts import classify_situation

    return classify_situation(str(row.get("situation", "")), str(row.get("text", ""))) in SPECIAL_SCRIPT_KEYS


def score(
    cases: Sequence[TurnCase],
    rows: Sequence[dict[str, Any]],
    ranks: Sequence[int | None],
    rubric: dict[tuple[str, int, str], dict[str, str]],
    forbidden: Any,
) -> dict[str, Any]:
    """The suite's numbers per part (tune, test) from the suggestions' JSON rows and the retrieval ranks."""
    from copilot.suggest.guard import opens_with_empathy
    from copilot.suggest.slots import unfilled_placeholders

    out: dict[str, Any] = {}
    for part in ("tune", "test"):
        chosen = [(c, r, k) for c, r, k in zip(cases, rows, ranks, strict=True) if c.split == part]
        ordinary = [r for c, r, _ in chosen if c.situation == "ordinary"]
        upset = [r for c, r, _ in chosen if c.upset]
        texts = [str(r.get("text", "")) for _, r, _ in chosen]
        judged = [
            rubric.get((c.dialogue_id, c.turn, suggestion_hash(str(r.get("text", ""))))) for c, r, _ in chosen
        ]
        passing = [j for j in judged if j is not None and all(j[p] == "yes" for p in RUBRIC_POINTS)]
        judged_rows = [j for j in judged if j is not None]
        ranked = [k for _, _, k in chosen]
        rewritten = [r for _, r, _ in chosen if (r.get("latency_ms") or {}).get("done") is not None]
        out[part] = {
            "turns": len(chosen),
            "special_on_ordinary": sum(is_special(r) for r in ordinary),
            "ordinary": len(ordinary),
            "unfilled_template": sum(bool(unfilled_placeholders(t)) for t in texts),
            "forbidden_phrase": sum(bool(forbidden(t)) for t in texts if t),
            "empathy_when_upset": sum(opens_with_empathy(str(r.get("text", ""))) for r in upset),
            "upset": len(upset),
            "recall@3": rate(sum(1 for k in ranked if k is not None and k <= RECALL_AT), len(ranked)),
            "mrr": round(sum(1.0 / k for k in ranked if k) / len(ranked), 4) if ranked else None,
            "rubric_all_points": rate(len(passing), len(judged_rows)),
            "rubric_judged": len(judged_rows),
            "rubric_points": {
                p: rate(sum(j[p] == "yes" for j in judged_rows), len(judged_rows)) for p in RUBRIC_POINTS
            },
            # The LLM step: how many rewrites it finished, how many the guard kept, why the rest were refused.
            "llm_rewrites": len(rewritten),
            "llm_kept": sum(r.get("fallback") is False for r in rewritten),
            "llm_refused": dict(
                Counter(
                    str(r.get("reason", "")).split(":")[0]
                    for r in rewritten
                    if r.get("fallback") is not False
                )
            ),
            "script_ms_p50": p50(
                [t for _, r, _ in chosen if (t := (r.get("latency_ms") or {}).get("script")) is not None]
            ),
            "done_ms_p50": p50([r["latency_ms"]["done"] for r in rewritten]),
        }
    return out


def render(data: dict[str, Any]) -> str:
    lines = [f"realsuggest: {data['turns']} real customer turns ({data['source']})"]
    header = f"  {'part':<5} {'special/ordinary':>16} {'unfilled':>8} {'forbidden':>9} {'empathy/upset':>13} "
    header += f"{'R@3':>6} {'MRR':>6} {'rubric all':>10} {'judged':>6}"
    lines.append(header)
    for part in ("tune", "test"):
        m = data[part]
        rubric = "-" if m["rubric_all_points"] is None else f"{m['rubric_all_points']:.2f}"
        lines.append(
            f"  {part:<5} {m['special_on_ordinary']:>7}/{m['ordinary']:<8} {m['unfilled_template']:>8} "
            f"{m['forbidden_phrase']:>9} {m['empathy_when_upset']:>6}/{m['upset']:<6} "
            f"{m['recall@3']:>6.3f} {m['mrr']:>6.3f} {rubric:>10} {m['rubric_judged']:>6}"
        )
        points = "  ".join(f"{p} {v}" for p, v in m["rubric_points"].items())
        lines.append(f"        rubric points: {points}")
        if m.get("caller_lines"):
            c = m["caller_lines"]
            upset, calm = c.get("upset", 0), c.get("calm", 0)
            lines.append(
                f"        labelled caller lines: empathy when upset {c.get('empathy_when_upset', 0)}/{upset} "
                f"= {rate(c.get('empathy_when_upset', 0), upset)}, when calm {c.get('empathy_when_calm', 0)}/"
                f"{calm} = {rate(c.get('empathy_when_calm', 0), calm)}"
            )
        if m["llm_rewrites"]:
            refused = ", ".join(
                f"{why} {n}" for why, n in sorted(m["llm_refused"].items(), key=lambda x: -x[1])
            )
            lines.append(
                f"        LLM: {m['llm_kept']}/{m['llm_rewrites']} rewrites kept; script p50 {m['script_ms_p50']} ms, "
                f"rewrite done p50 {m['done_ms_p50']} ms; refused: {refused or '-'}"
            )
    return "\n".join(lines)


def run_realsuggest(
    config: Config,
    *,
    use_llm: bool = False,
    from_jsonl: Path | None = None,
    dump: Path | None = None,
    search_jsonl: Path | None = None,
    rubric_path: Path = LABELS_DIR / RUBRIC_FILE,
) -> EvalOutcome:
    """The suite's core: suggestions (run here, or read from a JSONL), retrieval, the rubric, per part."""
    from copilot.judgement import default_engine
    from copilot.knowledge.retrieval import assess, open_retriever
    from copilot.suggest.engine import NON_SUGGESTION_KINDS, SuggestOptions, run_to_end, suggestion_dict

    cases = load_cases()
    rules = default_engine()

    def forbidden(text: str) -> list[str]:
        flags = rules.check_utterance(Segment("agent", 0.0, 1.0, text))
        return [f.rule for f in flags if f.kind not in NON_SUGGESTION_KINDS]

    lines: dict[str, dict[str, int]] = {}
    if from_jsonl is not None:
        rows = read_jsonl(from_jsonl, len(cases))
        retriever = open_retriever(config)
    else:
        from copilot.session.engines import Services

        services = Services(config)
        suggester = services.suggester
        retriever = suggester.retriever
        suggester.warm()
        options = SuggestOptions(use_llm=use_llm)
        rows = [
            suggestion_dict(
                run_to_end(suggester.suggest(c.context, options=options, turn_ended=time.monotonic()))
            )
            for c in cases
        ]
        lines = caller_line_empathy(suggester)
    ranks = []
    if search_jsonl is not None:
        for case, answer in zip(cases, read_jsonl(search_jsonl, len(cases)), strict=True):
            hits = answer if isinstance(answer, list) else answer.get("hits", [])
            none = isinstance(answer, dict) and answer.get("answer") == "none"
            ranks.append(retrieval_rank(case, [(h["section"], h["text"]) for h in hits[:RECALL_AT]], none))
    for case in cases if search_jsonl is None else ():
        found = assess(retriever, case.text, k=RECALL_AT)
        ranks.append(
            retrieval_rank(case, [(h.passage.section, h.passage.text) for h in found.hits], found.none_fits)
        )
    if dump is not None:
        with dump.open("w", encoding="utf-8") as f:
            for case, row in zip(cases, rows, strict=True):
                f.write(
                    json.dumps(
                        {
                            "dialogue_id": case.dialogue_id,
                            "turn": case.turn,
                            "split": case.split,
                            "situation": case.situation,
                            "upset": case.upset,
                            "context": [
                                f"{s.speaker}: {s.text}" for s in case.context[-DUMP_CONTEXT - 1 : -1]
                            ],
                            "customer": case.text,
                            "suggestion": row.get("text", ""),
                            "hash": suggestion_hash(str(row.get("text", ""))),
                            "cites": [f"{c['id']} {c['section']}" for c in row.get("cites", [])],
                            "move": row.get("move", ""),
                            "fallback": row.get("fallback"),
                            "reason": row.get("reason", ""),
                            "latency_ms": row.get("latency_ms", {}),
                            "situation_key": row.get("situation_key", ""),
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
    data = {
        "suite": "realsuggest",
        "turns": len(cases),
        "source": str(from_jsonl)
        if from_jsonl
        else ("suggester with LLM" if use_llm else "suggester, scripts"),
        **score(cases, rows, ranks, read_rubric(rubric_path), forbidden),
    }
    for part, tally in lines.items():
        data[part]["caller_lines"] = tally
    return EvalOutcome(render(data), data)


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    """The registered wrapper: the suite's options from ``copilot eval``."""
    return run_realsuggest(
        config,
        use_llm=not (options.no_llm or options.quick) and config.llm.enabled,
        from_jsonl=Path(options.from_jsonl) if options.from_jsonl else None,
        dump=Path(options.dump) if options.dump else None,
        search_jsonl=Path(options.search_jsonl) if options.search_jsonl else None,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from-jsonl", help="realsuggest: score `copilot suggest --file --json` output instead"
    )
    parser.add_argument(
        "--search-jsonl", help="realsuggest: score `copilot search --file --json` output instead"
    )
    parser.add_argument(
        "--dump", help="realsuggest: write the suggestions with their turns here, for reading"
    )


def metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    test = data["test"]
    lines = test.get("caller_lines", {})
    return [
        Metric("realsuggest_special_on_ordinary", "real turns: special scripts on ordinary (test)",
               test["special_on_ordinary"], "lower", "n", test["ordinary"]),
        Metric("realsuggest_unfilled", "real turns: unfilled templates (test)", test["unfilled_template"],
               "lower", "n", test["turns"]),
        Metric("realsuggest_empathy", "real turns: empathy when upset (test)",
               rate(test["empathy_when_upset"], test["upset"]), "higher", "", test["upset"]),
        Metric("realsuggest_line_empathy", "caller lines: empathy when upset (test)",
               rate(lines.get("empathy_when_upset", 0), lines.get("upset", 0)), "higher", "", lines.get("upset", 0)),
        Metric("realsuggest_line_empathy_calm", "caller lines: empathy when calm (test)",
               rate(lines.get("empathy_when_calm", 0), lines.get("calm", 0)), "lower", "", lines.get("calm", 0)),
        Metric("realsuggest_recall@3", "real turns: retrieval recall@3, none counted (test)", test["recall@3"],
               "higher", "", test["turns"]),
        Metric("realsuggest_rubric", "real turns: rubric, all points (test)", test["rubric_all_points"],
               "higher", "", test["rubric_judged"]),
        Metric("realsuggest_llm_kept", "real turns: LLM rewrites kept (test)",
               rate(test["llm_kept"], test["llm_rewrites"]), "higher", "", test["llm_rewrites"]),
        Metric("realsuggest_done_p50", "real turns: rewrite done p50 (test)", test["done_ms_p50"],
               "lower", "ms", test["llm_rewrites"]),
    ]  # fmt: skip


register_suite(
    "realsuggest",
    run,
    help="suggestions on 160 real customer turns (../shared/realdata): special scripts on ordinary turns, "
    "unfilled templates, forbidden phrases, empathy when upset, retrieval with none, the read rubric",
    add_arguments=add_arguments,
    metrics=metrics,
    quick=False,
)
