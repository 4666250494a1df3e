"""``copilot replay``: the trainer's view of a recorded call, turn by turn."""

from __future__ import annotations

import argparse
from pathlib import Path

from copilot.commands._common import config_from_args, print_json
from copilot.evaluation.turn_by_turn import replay_call
from copilot.qa.calls import load_call
from copilot.session.engines import Services
from copilot.suggest.engine import suggestion_dict
from copilot.transcription.redact import text_redactor


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="at each customer turn of a call: what the copilot would suggest vs what the agent said",
        description="Replay a recorded call (JSON transcript or recording) through the live pipeline and list, "
        "for every customer turn, the suggestion next to the agent's actual reply, their similarity, and "
        "the rules each breaks.",
    )
    parser.add_argument("call", help="a call transcript (.json) or a recording")
    parser.add_argument("--no-llm", action="store_true", help="handbook scripts only")
    parser.add_argument("--json", action="store_true", help="print one JSON object for the call")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    services = Services(config)
    transcript = load_call(Path(args.call), services)
    embedder = None if config.retrieval.mode == "bm25" else services.embedder
    turns = replay_call(
        transcript, services, embedder=embedder, use_llm=not args.no_llm and config.llm.enabled
    )
    clean = text_redactor(config.privacy.redact, config.privacy.redact_kinds)
    rows = [
        {
            "at": round(t.customer.end, 2),
            "customer": clean(t.customer.text),
            "suggestion": {**suggestion_dict(t.suggestion), "text": clean(t.suggestion.text)},
            "actual": clean(t.actual),
            "similarity": t.similarity,
            "suggestion_compliant": not t.suggestion_flags,
            "suggestion_flags": list(t.suggestion_flags),
            "actual_flags": list(t.actual_flags),
        }
        for t in turns
    ]
    if args.json:
        print_json({"call": str(args.call), "duration": transcript.duration, "turns": rows})
        return 0
    for t in turns:
        print(f"[{t.customer.end:6.1f}s] customer: {clean(t.customer.text)}")
        print(f"          copilot:  {clean(t.suggestion.text)}")
        print(f"          agent:    {clean(t.actual) or '(no reply)'}   similarity {t.similarity:.2f}")
        if t.actual_flags:
            print(f"          agent broke: {', '.join(t.actual_flags)}")
    return 0
