"""``copilot check``: the playbook's real-time rules on single utterances."""

from __future__ import annotations

import argparse
from typing import Any

from copilot.commands._common import config_from_args, print_json, read_lines
from copilot.errors import ConfigError
from copilot.judgement.engine import RuleEngine
from copilot.judgement.playbook import load_playbook
from copilot.judgement.tone import agent_tone, customer_emotion
from copilot.qa.review import flag_dict
from copilot.transcription.redact import text_redactor
from copilot.transcription.transcript_files import to_simplified
from copilot.types import Flag, Role, Segment, ToneLabel


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check utterances against the playbook (forbidden phrasing, tone)",
        description="Run the playbook's real-time rules on utterances given as arguments or one per line "
        "(--file). Every flag cites the handbook clause it rests on. Text in the output is redacted.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="utterances to check")
    parser.add_argument(
        "--file", dest="list_file", help="one utterance per line ('-': stdin); JSONL with --json"
    )
    parser.add_argument(
        "--role", choices=("agent", "customer"), default="agent", help="who said it (default agent)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per utterance")
    parser.add_argument("--playbook", help="playbook YAML (default: knowledge/playbook.yaml)")
    parser.add_argument(
        "--semantic",
        action="store_true",
        help="also flag lines close in meaning to the playbook's examples (loads the embedder once)",
    )
    parser.set_defaults(func=_run)


def _tone_dict(label: ToneLabel) -> dict[str, Any]:
    return {"label": label.label, "score": round(label.score, 2), "evidence": list(label.evidence)}


def _print_human(text: str, flags: list[Flag], tone: list[ToneLabel]) -> None:
    print(f"# {text}")
    if not flags:
        print("  ok")
    for flag in flags:
        print(f"  [{flag.severity}] {flag.rule}/{flag.kind}: {flag.message}")
        print(f"      {flag.clause.document} {flag.clause.section}: {flag.clause.quote}")
    for label in tone:
        print(f"  tone {label.label} ({label.score:.2f}): {'、'.join(label.evidence)}")


def _run(args: argparse.Namespace) -> int:
    texts = list(args.texts)
    if args.list_file:
        texts += read_lines(args.list_file)
    if not texts:
        raise ConfigError("no text given (pass TEXT or --file LINES.txt)")
    config = config_from_args(args)
    embedder = None
    if args.semantic:
        from copilot.knowledge.embedding import load_embedder

        embedder = load_embedder(config.embedder)  # once, for every line
    engine = RuleEngine(load_playbook(args.playbook), embedder=embedder)
    role: Role = args.role
    clean = text_redactor(config.privacy.redact, config.privacy.redact_kinds)
    for text in texts:
        # The playbook is Simplified, as the ASR output is: Traditional input is checked the same way.
        segment = Segment(speaker=role, start=0.0, end=0.0, text=to_simplified(text))
        flags = engine.check_utterance(segment)
        if role == "agent":
            tone = agent_tone(segment.text)
        else:
            emotion = customer_emotion(segment.text, embedder=embedder)
            tone = [emotion] if emotion.label != "calm" else []
        if args.json:
            print_json(
                {
                    "text": clean(text),
                    "role": role,
                    "flags": [_redacted(flag_dict(f), clean) for f in flags],
                    "tone": [_tone_dict(t) for t in tone],
                }
            )
        else:
            _print_human(clean(text), flags, tone)
    return 0


def _redacted(flag: dict[str, Any], clean: Any) -> dict[str, Any]:
    for evidence in flag["evidence"]:
        evidence["text"] = clean(evidence["text"])
    return flag
