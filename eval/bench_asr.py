"""Benchmark of the transcription path: CER, offline RTF, streaming latency, speaker roles.

Run from the repository root (models installed with ``copilot models install``):

    .venv/bin/python eval/bench_asr.py [--backends faster-whisper openai-whisper] [--latency-backends ...]

* CER on ../shared/audio (refs.tsv) and on ../shared/calls (per role, against each call's script json),
  each file replayed through the streaming path exactly as ``copilot transcribe`` does. A "plain" column
  decodes the whole file in one call of the same backend (no streaming) for comparison.
  Normalisation before CER: Traditional -> Simplified (OpenCC t2s), Arabic digits -> Chinese numerals
  (cn2an an2cn, so 80 and 八十 compare equal), lower case, and every character that is not a letter or a
  digit (punctuation, spaces) removed.
* Offline RTF: wall time of ``transcribe_file`` on the stereo call over its duration.
* Streaming latency: the stereo calls replayed at real time (chunks paced by a real clock, partials on);
  for each scripted customer utterance, wall time from its scripted ``end`` to the commit of the last
  committed customer segment that overlaps it. The calls are decoded as live calls are (``AsrConfig.for_live``:
  ``live_beam_size``, no word times, the trimmed window), and the CER of those live commits is printed per role.
* Speakers right: every committed segment of the stereo calls is matched to the scripted utterance it
  overlaps most; its role must equal that utterance's role.

The machine's 2 cores are shared during development: timings vary with load (the load average is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, get_args

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from copilot.config import AsrBackend, load_config  # noqa: E402
from copilot.evaluation.metrics import cer, percentile  # noqa: E402
from copilot.transcription.playback import ReplayOptions, replay, transcribe_file  # noqa: E402
from copilot.types import Committed, Segment  # noqa: E402

if TYPE_CHECKING:
    from copilot.transcription.asr import Vocabulary

CALLS = ("good_call", "bad_call")
STEREO_CALL = "good_call"  # the call whose offline RTF is reported


def script(name: str) -> list[dict]:
    return json.loads((SHARED / "calls" / f"{name}.json").read_text(encoding="utf-8"))["segments"]


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def role_text(segments: tuple[Segment, ...] | list[Segment], role: str) -> str:
    return "".join(s.text for s in segments if s.speaker == role)


def bench_backend(backend: AsrBackend, vocabulary: Vocabulary | None, trim_padding: bool) -> dict:
    from copilot.transcription.asr import load_transcriber

    config = dataclasses.replace(load_config().asr, backend=backend, trim_padding=trim_padding)
    started = time.monotonic()
    transcriber = load_transcriber(config, vocabulary) if vocabulary is not None else load_transcriber(config)
    result: dict = {"backend": backend, "load_s": time.monotonic() - started}

    refs, hyps, plain = [], [], []
    for line in (SHARED / "audio" / "refs.tsv").read_text(encoding="utf-8").splitlines():
        file, ref = line.split("\t")[:2]
        path = SHARED / "audio" / file
        refs.append(ref)
        hyps.append("".join(s.text for s in transcribe_file(path, config, transcriber).segments))
        from copilot.transcription.audio import read_all

        audio, _ = read_all(path)
        plain.append("".join(s.text for s in transcriber.transcribe(audio[0])))
    result["audio_cer"] = cer(refs, hyps)
    result["audio_cer_plain"] = cer(refs, plain)
    result["audio_examples"] = list(zip(refs, hyps, strict=True))

    role_refs: dict[str, list[str]] = {"agent": [], "customer": []}
    role_hyps: dict[str, list[str]] = {"agent": [], "customer": []}
    right = total = 0
    for name in CALLS:
        lines = script(name)
        started = time.monotonic()
        transcript = transcribe_file(SHARED / "calls" / f"{name}.wav", config, transcriber)
        elapsed = time.monotonic() - started
        if name == STEREO_CALL:
            result["rtf"] = elapsed / transcript.duration
        for role in role_refs:
            role_refs[role].append("".join(x["text"] for x in lines if x["role"] == role))
            role_hyps[role].append(role_text(transcript.segments, role))
        for seg in transcript.segments:
            best = max(lines, key=lambda x: overlap(seg.start, seg.end, x["start"], x["end"]))
            if overlap(seg.start, seg.end, best["start"], best["end"]) > 0:
                total += 1
                right += best["role"] == seg.speaker
        result[f"{name}_segments"] = [(s.speaker, s.start, s.end, s.text) for s in transcript.segments]
    for role in role_refs:
        result[f"calls_cer_{role}"] = cer(role_refs[role], role_hyps[role])
    result["speakers_right"] = (right, total)
    return result


def bench_latency(
    backend: AsrBackend, vocabulary: Vocabulary | None, live_beam: int | None
) -> tuple[list[float], dict]:
    """Seconds from each scripted customer end to its commit, replaying the calls at real time with the
    live decode settings (``AsrConfig.for_live``); also the CER of what was committed live, per role."""
    from copilot.transcription.asr import load_transcriber

    config = dataclasses.replace(load_config().asr, backend=backend)
    if live_beam is not None:
        config = dataclasses.replace(config, live_beam_size=live_beam)
    live = config.for_live()
    print(
        f"live decode {backend}: beam {live.beam_size}, word times {live.word_timestamps}, "
        f"trimmed window {live.trim_padding}"
    )
    load = (lambda c: load_transcriber(c, vocabulary)) if vocabulary is not None else load_transcriber
    transcriber = load(live)
    partial_config = live.for_partials()
    partial = None if partial_config is None else load(partial_config)
    latencies: list[float] = []
    refs: dict[str, list[str]] = {"agent": [], "customer": []}
    hyps: dict[str, list[str]] = {"agent": [], "customer": []}
    for name in CALLS:
        commits: list[tuple[float, Segment]] = []
        started = time.monotonic()
        for timed in replay(
            SHARED / "calls" / f"{name}.wav",
            live,
            transcriber,
            ReplayOptions(speed=1.0),
            partial_transcriber=partial,
        ):
            if isinstance(timed.event, Committed):
                commits.append((time.monotonic() - started, timed.event.segment))
        lines = script(name)
        for role in refs:
            refs[role].append("".join(x["text"] for x in lines if x["role"] == role))
            hyps[role].append(role_text([s for _, s in commits], role))
        for line in lines:
            if line["role"] != "customer":
                continue
            hits = [
                wall
                for wall, s in commits
                if s.speaker == "customer" and overlap(s.start, s.end, line["start"], line["end"]) > 0
            ]
            if hits:
                latencies.append(max(hits) - line["end"])
            else:
                print(f"  {name}: no commit for customer line at {line['start']} s: {line['text']}")
    return latencies, {role: cer(refs[role], hyps[role]) for role in refs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    backends = list(get_args(AsrBackend))
    parser.add_argument("--backends", nargs="*", choices=backends, default=backends)
    parser.add_argument("--latency-backends", nargs="*", choices=backends, default=["faster-whisper"])
    parser.add_argument("--vocabulary", action="store_true", help="use the knowledge base's domain words")
    parser.add_argument("--show", action="store_true", help="print the transcripts")
    parser.add_argument(
        "--trim-padding",
        action="store_true",
        help="offline CER/RTF rows: faster-whisper encodes the audio, not the 30-s padded window "
        "(the latency rows always decode as live calls do: [asr] live_trim_padding)",
    )
    parser.add_argument(
        "--live-beam", type=int, help="beam size of live decodes (default: [asr] live_beam_size)"
    )
    args = parser.parse_args()

    vocabulary = None
    if args.vocabulary:
        from copilot.knowledge import domain_vocabulary
        from copilot.transcription.asr import Vocabulary

        vocabulary = Vocabulary(words=tuple(domain_vocabulary()))
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores, shared)")
    print(f"vocabulary: {'knowledge base domain words' if vocabulary else 'none'}")
    print(
        f"faster-whisper trim_padding: {args.trim_padding}; openai-whisper trims: {load_config().asr.openai_trim_padding}"
    )
    header = f"{'backend':15} {'audio CER':>9} {'plain':>6} {'agent CER':>9} {'cust CER':>8} {'RTF':>5} {'roles':>7}"
    print(header, flush=True)  # each row as soon as its backend is measured (openai-whisper is slow)
    for backend in args.backends:
        r = bench_backend(backend, vocabulary, args.trim_padding)
        right, total = r["speakers_right"]
        print(
            f"{backend:15} {r['audio_cer']:9.3f} {r['audio_cer_plain']:6.3f} {r['calls_cer_agent']:9.3f} "
            f"{r['calls_cer_customer']:8.3f} {r['rtf']:5.2f} {right:>3}/{total:<3}",
            flush=True,
        )
        if args.show:
            for ref, hyp in r["audio_examples"]:
                print(f"  ref {ref}\n  hyp {hyp}")
            for seg in r[f"{STEREO_CALL}_segments"]:
                print("  ", seg)
    for backend in args.latency_backends:
        values, live_cer = bench_latency(backend, vocabulary, args.live_beam)
        if values:
            print(
                f"streaming latency {backend}: n={len(values)} p50={statistics.median(values):.2f} s "
                f"p95={percentile(values, 0.95):.2f} s max={max(values):.2f} s "
                f"(load average now {os.getloadavg()[0]:.1f})"
            )
        print(
            f"live commits CER {backend}: agent {live_cer['agent']:.3f} customer {live_cer['customer']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
