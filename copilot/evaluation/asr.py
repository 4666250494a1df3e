"""``copilot eval asr``: character error rate of the configured transcription, through the streaming path.

* Clips: the real recordings of ``REPO/../shared/audio`` against ``refs.tsv`` (corpus-level CER).
* Calls (not in ``--quick``): the stereo calls of ``REPO/../shared/calls``, per role, against each call's
  script (``NAME.json``), and the share of committed segments given the right speaker (the role of the
  scripted utterance a segment overlaps most).

Each file is transcribed as the app does (:func:`copilot.qa.calls.load_call` with the shared
:class:`~copilot.session.engines.Services` transcriber, which hears the knowledge base's domain words); outside
``--quick`` the clips are also decoded without those words, to show what they buy or cost. The CER and
its normalisation are :mod:`copilot.evaluation.metrics`' (the benchmarks use the same): Traditional -> Simplified (OpenCC
t2s), Arabic digits -> Chinese numerals (cn2an), lower case, every character that is not a letter or a
digit removed; edits over reference characters, summed over the set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from copilot.config import Config, shared_dir
from copilot.errors import ConfigError
from copilot.evaluation import EvalOutcome, Metric, SuiteOptions, context_of, rate, register_suite
from copilot.evaluation.metrics import CER_NORMALISATION
from copilot.evaluation.metrics import cer as corpus_cer
from copilot.types import Segment

SHARED_DIR = shared_dir()
CLIPS_DIR = SHARED_DIR / "audio"
CALLS_DIR = SHARED_DIR / "calls"
CALLS = ("good_call", "bad_call")
ROLES = ("agent", "customer")
NORMALISATION = CER_NORMALISATION


def cer(refs: list[str], hyps: list[str]) -> float:
    return round(corpus_cer(refs, hyps), 4)


def read_refs(directory: Path = CLIPS_DIR) -> list[tuple[Path, str]]:
    try:
        lines = (directory / "refs.tsv").read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read {directory / 'refs.tsv'}: {e}") from e
    return [(directory / line.split("\t")[0], line.split("\t")[1]) for line in lines if line.strip()]


def _overlap(a: Segment, start: float, end: float) -> float:
    return max(0.0, min(a.end, end) - max(a.start, start))


def speakers_right(segments: tuple[Segment, ...], script: list[dict[str, Any]]) -> tuple[int, int]:
    right = total = 0
    for segment in segments:
        best = max(script, key=lambda line: _overlap(segment, line["start"], line["end"]))
        if _overlap(segment, best["start"], best["end"]) > 0:
            total += 1
            right += best["role"] == segment.speaker
    return right, total


def run(options: SuiteOptions, config: Config) -> EvalOutcome:
    context = context_of(options, config)
    data: dict[str, Any] = {
        "suite": "asr",
        "backend": config.asr.backend,
        "model": config.asr.model,
        "normalisation": NORMALISATION,
    }
    refs, hyps = [], []
    examples = []
    for path, ref in read_refs():
        hyp = "".join(s.text for s in context.transcript(path).segments)
        refs.append(ref)
        hyps.append(hyp)
        examples.append({"file": path.name, "ref": ref, "hyp": hyp, "cer": cer([ref], [hyp])})
    data["clips"] = {"files": len(refs), "cer": cer(refs, hyps), "examples": examples}
    if not options.quick:
        # The same clips without the knowledge base's words (hotwords + correction): what they buy or cost.
        from copilot.transcription.asr import load_transcriber
        from copilot.transcription.playback import transcribe_file

        bare = load_transcriber(config.asr)
        plain = [
            "".join(s.text for s in transcribe_file(path, config.asr, bare).segments)
            for path, _ in read_refs()
        ]
        data["clips"]["cer_no_vocabulary"] = cer(refs, plain)
        role_refs: dict[str, list[str]] = {role: [] for role in ROLES}
        role_hyps: dict[str, list[str]] = {role: [] for role in ROLES}
        right = total = 0
        for name in CALLS:
            script = json.loads((CALLS_DIR / f"{name}.json").read_text(encoding="utf-8"))["segments"]
            transcript = context.transcript(CALLS_DIR / f"{name}.wav")
            for role in ROLES:
                role_refs[role].append("".join(line["text"] for line in script if line["role"] == role))
                role_hyps[role].append("".join(s.text for s in transcript.segments if s.speaker == role))
            r, t = speakers_right(transcript.segments, script)
            right, total = right + r, total + t
        data["calls"] = {
            "calls": list(CALLS),
            **{f"cer_{role}": cer(role_refs[role], role_hyps[role]) for role in ROLES},
            "speakers_right": rate(right, total),
            "segments": total,
        }
    return EvalOutcome(render(data), data)


def render(data: dict[str, Any]) -> str:
    clips = data["clips"]
    rows = [
        f"asr ({data['backend']}, {data['model']}): CER after normalisation: {data['normalisation']}",
        f"  clips ({clips['files']} real recordings): CER {clips['cer']:.3f}"
        + (
            f" (without the domain vocabulary {clips['cer_no_vocabulary']:.3f})"
            if "cer_no_vocabulary" in clips
            else ""
        ),
    ]
    rows += [f"    {e['cer']:.2f} {e['file']}: {e['hyp']}" for e in clips["examples"]]
    calls = data.get("calls")
    if calls:
        rows.append(
            f"  calls: CER agent {calls['cer_agent']:.3f}  customer {calls['cer_customer']:.3f}  "
            f"speaker right {calls['speakers_right']} of {calls['segments']} segments"
        )
    return "\n".join(rows)


def metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    rows = [Metric("cer_clips", "CER real clips", data["clips"]["cer"], "lower", n=data["clips"]["files"])]
    if "cer_no_vocabulary" in data["clips"]:
        rows.append(
            Metric(
                "cer_clips_no_vocabulary",
                "CER real clips, no vocabulary",
                data["clips"]["cer_no_vocabulary"],
                "lower",
                n=data["clips"]["files"],
            )
        )
    calls = data.get("calls")
    if calls:
        rows += [
            Metric("cer_agent", "CER calls, agent", calls["cer_agent"], "lower", n=len(calls["calls"])),
            Metric(
                "cer_customer", "CER calls, customer", calls["cer_customer"], "lower", n=len(calls["calls"])
            ),
            Metric(
                "speakers_right",
                "segments with the right speaker",
                calls["speakers_right"],
                n=calls["segments"],
            ),
        ]
    return rows


register_suite(
    "asr",
    run,
    help="CER of the configured ASR on ../shared/audio (refs.tsv) and per role on ../shared/calls",
    metrics=metrics,
)
