"""``copilot transcribe``: audio files to transcripts with agent/customer roles (or a live replay)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from copilot.commands._common import config_from_args, print_json, read_lines
from copilot.config import AsrConfig, Config
from copilot.errors import AudioError, ConfigError, CopilotError
from copilot.types import Committed, Segment, TentativeText, Transcript


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files (stereo: left = agent, right = customer)",
        description="Transcribe audio files through the streaming path. Stereo files give agent/customer "
        "roles by channel; mono files give speaker 'unknown'. Phone, ID and bank-card numbers are "
        "redacted unless [privacy] redact = false.",
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="audio files (wav, mp3, flac, m4a, ogg, opus)"
    )
    parser.add_argument(
        "--file", dest="list_file", help="read one audio path per line from this file ('-': stdin)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines (one object per file or event)")
    parser.add_argument("--backend", choices=("faster-whisper", "openai-whisper"), help="ASR backend")
    parser.add_argument(
        "--agent-channel", choices=("left", "right"), help="which stereo channel is the agent"
    )
    parser.add_argument(
        "--live", action="store_true", help="replay in real time, printing tentative/committed events"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="with --live: N times faster than real time")
    parser.add_argument("--words", action="store_true", help="include word timings in JSON segments")
    parser.add_argument(
        "--no-vocabulary",
        action="store_true",
        help="plain Whisper: without the knowledge base's domain words (homophone correction, hotwords)",
    )
    parser.set_defaults(func=_run)


def _asr_config(args: argparse.Namespace, config: Config) -> AsrConfig:
    asr = config.asr
    if args.backend:
        asr = dataclasses.replace(asr, backend=args.backend)
    if args.agent_channel:
        asr = dataclasses.replace(asr, agent_channel=args.agent_channel)
    return asr


def _redactor(config: Config) -> Callable[[str], str]:
    if not config.privacy.redact:
        return lambda text: text
    from copilot.transcription.redact import redact

    return redact


def segment_dict(segment: Segment, redact: Callable[[str], str], words: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "speaker": segment.speaker,
        "start": round(segment.start, 2),
        "end": round(segment.end, 2),
        "text": redact(segment.text),
    }
    if words:
        texts = [w.text for w in segment.words]
        joined = "".join(texts)
        if redact(joined) != joined:  # personal data, and redaction on: mask it across the words, since
            # each word redacted alone would keep a number the recogniser cut up (138 / 1234 / 5678)
            from copilot.transcription.redact import redact_pieces

            texts = redact_pieces(texts)
        out["words"] = [
            {"text": text, "start": round(w.start, 2), "end": round(w.end, 2)}
            for text, w in zip(texts, segment.words, strict=True)
        ]
    return out


def transcript_dict(
    file: str, transcript: Transcript, redact: Callable[[str], str], words: bool = False
) -> dict[str, Any]:
    return {
        "file": file,
        "duration": round(transcript.duration, 2),
        "segments": [segment_dict(s, redact, words) for s in transcript.segments],
    }


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


def _run(args: argparse.Namespace) -> int:
    files = list(args.files)
    if args.list_file:
        files += read_lines(args.list_file)
    if not files:
        raise ConfigError("no audio files given (name them, or use --file LIST)")
    if args.speed <= 0:
        raise ConfigError("--speed must be positive")
    config = config_from_args(args)
    asr = _asr_config(args, config)
    redact = _redactor(config)

    from pathlib import Path

    from copilot.transcription.asr import load_domain_transcriber

    partial = None
    if args.live:  # decode as a live call does (greedy, trimmed window)
        asr = asr.for_live()
    if args.words:  # the alignment pass costs several times the decode: only when asked for
        asr = dataclasses.replace(asr, word_timestamps=True)

    # The same factory and domain words as every other entry point; --no-vocabulary: plain Whisper. Files
    # start decoding at once: the correction's dictionaries load when its first text arrives.
    def load(asr_config: AsrConfig) -> Any:
        knowledge = Path(config.knowledge_dir)
        return load_domain_transcriber(asr_config, knowledge, domain_words=not args.no_vocabulary, warm=False)

    transcriber = load(asr)  # loaded once for every file
    partial_config = asr.for_partials() if args.live else None
    if partial_config is not None:
        partial = load(partial_config)
    worst = 0
    for file in files:
        try:
            if args.live:
                _live(file, asr, transcriber, partial, args, redact)
            else:
                _offline(file, asr, transcriber, args, redact)
        except AudioError as e:  # one bad file must not stop the batch
            print(f"copilot: error: {e}", file=sys.stderr)
            worst = max(worst, e.exit_code)
    return worst


def _offline(file: str, asr: AsrConfig, transcriber: Any, args: argparse.Namespace, redact: Callable) -> None:
    from copilot.transcription.playback import transcribe_file

    transcript = transcribe_file(file, asr, transcriber)
    if args.json:
        print_json(transcript_dict(file, transcript, redact, args.words))
        return
    print(f"# {file} ({transcript.duration:.1f} s, {len(transcript.segments)} segments)")
    for s in transcript.segments:
        print(f"[{_clock(s.start)}-{_clock(s.end)}] {s.speaker}: {redact(s.text)}")


def _live(
    file: str, asr: AsrConfig, transcriber: Any, partial: Any, args: argparse.Namespace, redact: Callable
) -> None:
    from copilot.transcription.playback import EndOfAudio, ReplayOptions, replay

    options = ReplayOptions(speed=args.speed)
    for timed in replay(file, asr, transcriber, options, partial_transcriber=partial):
        event = timed.event
        if isinstance(event, TentativeText):
            row: dict[str, Any] = {
                "type": "tentative",
                "speaker": event.speaker,
                "start": round(event.start, 2),
                "text": redact(event.text),
            }
            line = f"  … {event.speaker}: {redact(event.text)}"
        elif isinstance(event, Committed):
            row = {"type": "committed", **segment_dict(event.segment, redact, args.words)}
            s = event.segment
            line = f"[{_clock(s.start)}-{_clock(s.end)}] {s.speaker}: {redact(s.text)}"
        elif isinstance(event, EndOfAudio):
            row = {"type": "end", "duration": round(event.duration, 2)}
            line = f"# end of {file} ({event.duration:.1f} s)"
        else:  # pragma: no cover - the replay yields only the kinds above
            raise CopilotError(f"unexpected event {event!r}")
        if args.json:
            print_json({"file": file, "audio_time": round(timed.audio_time, 2), **row})
        else:
            print(line, flush=True)
