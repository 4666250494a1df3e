"""What domain vocabulary buys Whisper base: prompt vs hotwords vs homophone correction, in CER.

Two suites, both print a table (numbers only; no assertions):

- ``calls`` (default): the synthetic stereo calls in ../shared/calls (left = agent, right = customer),
  references from their .json scripts. Each condition decodes every channel once; the homophone
  correction is post-processing, so its effect is measured on the same decode ("+corr" columns).
  "terms" is recall of vocabulary words that occur in the references.
- ``audio``: the four real recordings in ../shared/audio (refs.tsv), one backend per run, with load
  time and resident memory of the model.

    .venv/bin/python eval/bench_asr_vocab.py                      # calls, faster-whisper, beam from config
    .venv/bin/python eval/bench_asr_vocab.py --suite audio --backend openai-whisper --beam 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub: never download

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"

from copilot.config import AsrConfig, load_config  # noqa: E402
from copilot.evaluation.metrics import cer  # noqa: E402
from copilot.transcription.asr import Transcriber, Vocabulary, load_transcriber  # noqa: E402
from copilot.transcription.audio import read_all  # noqa: E402
from copilot.transcription.correct import correct_homophones  # noqa: E402

# Until the knowledge engineer ships one built from the handbooks: after-sales words Whisper base mishears.
VOCABULARY = (
    "客服",
    "致电",
    "售后",
    "售后服务中心",
    "油烟机",
    "抽油烟机",
    "保修",
    "保修期",
    "报修",
    "维修",
    "上门",
    "工程师",
    "洗衣机",
    "冰箱",
    "空调",
    "热水器",
    "脱水",
    "制冷",
    "型号",
    "购买日期",
    "发票",
    "退货",
    "换货",
    "投诉",
    "工单",
    "来电",
    "稍等",
    "耐心等候",
    "不便",
)
CONDITIONS = {  # correction is measured on every condition's decode, so it is off here
    "none": Vocabulary(hotwords=False, in_prompt=False, correct=False),
    "prompt": Vocabulary(hotwords=False, in_prompt=True, correct=False),
    "hotwords": Vocabulary(hotwords=True, in_prompt=False, correct=False),
    "prompt+hotwords": Vocabulary(hotwords=True, in_prompt=True, correct=False),
}
CHANNEL_ROLES = ("agent", "customer")  # left, right (recorder convention of ../shared/calls)
KIB = 1024  # ru_maxrss is in KiB on Linux


def term_recall(refs: list[str], hyps: list[str], vocabulary: tuple[str, ...]) -> float:
    """Share of vocabulary-word occurrences in the references that the hypotheses also contain."""
    found = total = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        for word in sorted(vocabulary, key=len, reverse=True):
            wanted = ref.count(word)
            total += wanted
            found += min(wanted, hyp.count(word))
    return found / total if total else 1.0


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / KIB
    return float("nan")


def bench_calls(config: AsrConfig, names: list[str], conditions: list[str], words: tuple[str, ...]) -> None:
    calls = []
    for name in names:
        script = json.loads((SHARED / "calls" / f"{name}.json").read_text(encoding="utf-8"))
        audio, _duration = read_all(SHARED / "calls" / f"{name}.wav")
        for index, role in enumerate(CHANNEL_ROLES):
            ref = "".join(s["text"] for s in script["segments"] if s["role"] == role)
            calls.append((f"{name}/{role}", audio[index], ref))
    seconds_of_audio = sum(a.size for _, a, _ in calls) / 16000
    print(f"backend={config.backend} model={config.model} beam={config.beam_size} vad={config.vad}")
    print(
        f"{len(calls)} channels, {seconds_of_audio:.1f} s of channel audio, vocabulary of {len(VOCABULARY)} words"
    )
    print(f"{'condition':<16} {'CER':>6} {'+corr':>6} {'terms':>6} {'+corr':>6} {'RTF':>5}")
    examples: dict[str, list[tuple[str, str]]] = {}
    for condition in conditions:
        transcriber: Transcriber = load_transcriber(config, replace(CONDITIONS[condition], words=words))
        refs: list[str] = []
        hyps: list[str] = []
        started = time.monotonic()
        for _label, audio, ref in calls:
            refs.append(ref)
            hyps.append("".join(s.text for s in transcriber.transcribe(audio)))
        rtf = (time.monotonic() - started) / seconds_of_audio
        fixed = [correct_homophones(h, words) for h in hyps]
        print(
            f"{condition:<16} {cer(refs, hyps):6.3f} {cer(refs, fixed):6.3f} "
            f"{term_recall(refs, hyps, words):6.3f} {term_recall(refs, fixed, words):6.3f} {rtf:5.2f}",
            flush=True,
        )
        examples[condition] = [(h, f) for h, f in zip(hyps, fixed, strict=True) if h != f]
    for condition, changed in examples.items():
        for before, after in changed:
            print(f"  corrected [{condition}]: {before}\n                -> {after}")


def bench_audio(config: AsrConfig) -> None:
    refs = {}
    for line in (SHARED / "audio" / "refs.tsv").read_text(encoding="utf-8").splitlines():
        name, ref = line.split("\t")[:2]
        refs[name] = ref
    clips = [(name, read_all(SHARED / "audio" / name)[0][0]) for name in sorted(refs)]
    if config.backend == "openai-whisper":
        import whisper  # noqa: F401  (library import cost is not the model's)
    else:
        import faster_whisper  # noqa: F401
    before = rss_mib()
    started = time.monotonic()
    transcriber = load_transcriber(config)
    load_s = time.monotonic() - started
    after = rss_mib()
    print(f"backend={config.backend} beam={config.beam_size} compute_type={config.compute_type}")
    print(f"load {load_s:.2f} s; RSS {before:.0f} -> {after:.0f} MiB (model +{after - before:.0f} MiB)")
    hyps, total_audio, total_time = [], 0.0, 0.0
    for name, audio in clips:
        started = time.monotonic()
        text = "".join(s.text for s in transcriber.transcribe(audio))
        elapsed = time.monotonic() - started
        total_audio += audio.size / 16000
        total_time += elapsed
        hyps.append(text)
        print(f"{name:<48} CER {cer([refs[name]], [text]):5.3f}  {elapsed:5.1f} s  {text}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB
    print(f"overall CER {cer([refs[n] for n, _ in clips], hyps):.3f}; RTF {total_time / total_audio:.2f}")
    print(f"peak RSS {peak:.0f} MiB (first call includes one-time warm-up, e.g. numba for word timing)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("calls", "audio"), default="calls")
    parser.add_argument("--backend", choices=("faster-whisper", "openai-whisper"), default=None)
    parser.add_argument("--beam", type=int, default=None, help="beam size (1 = greedy; default: config)")
    parser.add_argument("--calls", nargs="+", default=["good_call", "bad_call"])
    parser.add_argument(
        "--vocabulary",
        choices=("script", "handbooks"),
        default="script",
        help="the constant list in this script, or copilot.knowledge.domain_vocabulary() from the handbooks",
    )
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS))
    args = parser.parse_args()
    config = load_config().asr
    if args.backend:
        config = replace(config, backend=args.backend)
    if args.beam:
        config = replace(config, beam_size=args.beam)
    load = os.getloadavg()[0]
    print(f"# load average {load:.1f} on {os.cpu_count()} cores: timings are whole-machine figures")
    if args.suite == "calls":
        words: tuple[str, ...] = VOCABULARY
        if args.vocabulary == "handbooks":
            from copilot.knowledge import domain_vocabulary

            words = tuple(domain_vocabulary())
        bench_calls(config, args.calls, args.conditions, words)
    else:
        bench_audio(config)


if __name__ == "__main__":
    main()
