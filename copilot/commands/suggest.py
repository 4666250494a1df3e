"""``copilot suggest``: the next reply for a customer utterance or a moment of a recorded call."""

from __future__ import annotations

import argparse
import time

from copilot.commands._common import config_from_args, print_json, read_lines
from copilot.errors import ConfigError, TranscriptError
from copilot.session.engines import Services
from copilot.suggest.engine import SuggestOptions, run_to_end, suggestion_dict
from copilot.transcription.redact import text_redactor
from copilot.transcription.transcript_files import read_transcript
from copilot.types import Segment


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "suggest",
        help="suggest the agent's next reply (handbook script, then a guarded LLM rewrite)",
        description="Suggest what the agent should say next: the best handbook script at once, then the local "
        "LLM's adaptation, checked by the same rules as the agent (a rewrite that breaks a rule, invents a "
        "promise or strays from the cited passages is replaced by the script).",
    )
    parser.add_argument("utterance", nargs="?", help="what the customer just said")
    parser.add_argument(
        "--file",
        dest="list_file",
        help="one customer utterance per line (JSONL out: answer N is line N; a blank line gets none)",
    )
    parser.add_argument("--transcript", help="a call transcript (.json, shaped like ../shared/calls/*.json)")
    parser.add_argument("--at", type=float, help="with --transcript: the moment (seconds) to suggest at")
    parser.add_argument("--no-llm", action="store_true", help="the handbook script only")
    parser.add_argument("--json", action="store_true", help="print JSON (one object per utterance)")
    parser.set_defaults(func=_run)


def _contexts(args: argparse.Namespace) -> list[tuple[Segment, ...]]:
    if args.transcript:
        if args.at is None:
            raise ConfigError("--transcript needs --at SECONDS")
        transcript = read_transcript(args.transcript)
        before = tuple(s for s in transcript.segments if s.end <= args.at + 1e-6)
        if not any(s.speaker != "agent" for s in before):
            raise TranscriptError(f"no customer speech in {args.transcript} before {args.at} s")
        return [before]
    lines = [args.utterance] if args.utterance else []
    if args.list_file:
        lines += read_lines(args.list_file, keep_blank=True)  # a blank line gets "none": answer N is line N
    if not lines:
        raise ConfigError("give an utterance, --file UTTERANCES.txt, or --transcript CALL.json --at SECONDS")
    return [(Segment("customer", 0.0, 0.0, line),) for line in lines]


def _run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    contexts = _contexts(args)
    services = Services(config)
    suggester = services.suggester  # models load once for every line
    # First-use costs (the LLM's prefix cache, jieba) are paid here, not by the first line, so
    # each line's latency_ms is what the live panel would show; they took ~6 s off the first upset line.
    suggester.warm()
    options = SuggestOptions(use_llm=not args.no_llm and config.llm.enabled)
    clean = text_redactor(config.privacy.redact, config.privacy.redact_kinds)
    for context in contexts:
        suggestion = run_to_end(suggester.suggest(context, options=options, turn_ended=time.monotonic()))
        out = suggestion_dict(suggestion)
        out["text"], out["script"] = (
            clean(str(out["text"])),
            clean(str(out["script"])),
        )  # as-is when redaction is off
        if out["suggestion"] != "none":
            out["suggestion"] = out["text"]
        # What was answered, redacted like the answer: a list's lines are matched to answers without counting.
        out["utterance"] = clean(next((s.text for s in reversed(context) if s.speaker != "agent"), ""))
        if args.json:
            print_json(out)
        else:
            print(out["text"] or f"(none: {suggestion.reason})")
            if suggestion.fallback and suggestion.reason:
                print(f"  (script kept: {suggestion.reason})")
            for cite in suggestion.cites:
                print(f"  [{cite.id}] {cite.source} {cite.section}")
    return 0
