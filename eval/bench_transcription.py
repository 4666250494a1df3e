"""Side by side, in one run: plain faster-whisper against the product's offline and live transcription.

Run from the repository root (models installed, ``sox`` on the PATH for the telephone band):

    .venv/bin/python eval/bench_transcription.py                       # every set, every clip
    .venv/bin/python eval/bench_transcription.py --sets real16 real8 --limit 20 --paths plain offline

The three paths decode the same audio, interleaved item by item (the machine is shared: a burst of load
hits all three alike):

* **plain**: what a user would write with faster-whisper and the same model files
  (``runtime_path("whisper-base")``): ``WhisperModel(path, device="cpu", compute_type="int8")`` and
  ``model.transcribe(audio, language="zh", beam_size=5, initial_prompt="以下是普通话的句子。")``; stereo
  calls are split into their channels and decoded each with ``vad_filter=True`` (without it plain
  Whisper writes credits into the silences).
* **offline**: ``copilot transcribe`` without redaction: ``transcribe_file`` with the transcriber of
  ``load_domain_transcriber``.
* **live**: the live call's decoder (``AsrConfig.for_live``) replayed through the streaming path with tentative
  text on, as fast as it decodes (simulated clock); only the committed text is scored.

Sets (``--sets``): ``audio`` (../shared/audio, 4 clips), ``calls`` (../shared/calls, 2 stereo calls scored
per role against NAME.json), ``real16`` (../shared/realdata/asr, 100 clips), ``real8`` (the same clips
through ``sox -R IN -r 8000 OUT.wav sinc 300-3400``, a telephone band), ``realcalls`` / ``realcalls8``
(stereo calls synthesised from the real clips at 16 / 8 kHz: consecutive clips alternate between the agent's
(left) and the customer's (right) channel with pauses between them; written to a temporary folder and
deleted afterwards). The real clips are split by a hash of their file name into a *tuning* half and a
*held-out* half, reported apart; a synthesised call takes its clips from one half only.

CER is :func:`copilot.evaluation.metrics.cer` (one normalisation for all paths), corpus-level per set
(stereo: each role's text of a call is one item). Time is CPU (this process, all threads) and wall per
path, summed over the set. Start-up is measured apart, in fresh processes on one clip: a plain script and
``copilot transcribe CLIP`` (both timed to their first ``WhisperModel.transcribe`` call and to exit); the
"with start-up" wall ratio adds each side's start-up to its set total (as one CLI run over the set would).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from copilot.config import AsrConfig, load_config, shared_dir  # noqa: E402
from copilot.evaluation.metrics import cer  # noqa: E402

SHARED = shared_dir()
REAL_DIR = SHARED / "realdata" / "asr"
PLAIN_PROMPT = "以下是普通话的句子。"
PLAIN_BEAM = 5
SETS = ("audio", "calls", "real16", "real8", "realcalls", "realcalls8")
PATHS = ("plain", "offline", "live")
HALVES = ("tuning", "held-out")
CLIPS_PER_CALL = 8  # real clips per synthesised call, alternating agent / customer
TELEPHONE_RATE = 8000
ROLES = ("agent", "customer")


@dataclass(frozen=True)
class Item:
    """One file to transcribe and what was said in it, per speaker (mono: ``unknown``)."""

    name: str
    path: Path
    refs: dict[str, str]
    half: str = "-"  # tuning / held-out for the real clips, "-" for the shared sets

    @property
    def stereo(self) -> bool:
        return "agent" in self.refs


@dataclass
class Tally:
    """What one path produced over a set: texts per item and role, seconds spent."""

    hyps: list[dict[str, str]] = field(default_factory=list)
    cpu: float = 0.0
    wall: float = 0.0


# ------------------------------------------------------------------------------------------ data sets


def half_of(name: str) -> str:
    """tuning or held-out, fixed by the file name (not by order, so adding clips moves none)."""
    return HALVES[hashlib.sha1(name.encode("utf-8")).digest()[0] % 2]


def read_refs(directory: Path) -> list[tuple[str, str]]:
    rows = []
    for line in (directory / "refs.tsv").read_text(encoding="utf-8").splitlines():
        cells = line.split("\t")
        if len(cells) >= 2 and cells[0] != "file":
            rows.append((cells[0], cells[1]))
    return rows


def shared_clips() -> list[Item]:
    return [Item(n, SHARED / "audio" / n, {"unknown": r}) for n, r in read_refs(SHARED / "audio")]


def shared_calls() -> list[Item]:
    items = []
    for script in sorted((SHARED / "calls").glob("*.json")):
        lines = json.loads(script.read_text(encoding="utf-8"))["segments"]
        refs = {role: "".join(x["text"] for x in lines if x["role"] == role) for role in ROLES}
        items.append(Item(script.stem, script.with_suffix(".wav"), refs))
    return items


def real_clips(limit: int | None) -> list[Item]:
    items = [Item(n, REAL_DIR / n, {"unknown": r}, half_of(n)) for n, r in sorted(read_refs(REAL_DIR))]
    return _limited(items, limit)


def _limited(items: list[Item], limit: int | None) -> list[Item]:
    """At most ``limit`` items of each half (the halves stay balanced)."""
    if limit is None:
        return items
    return [i for h in HALVES for i in [x for x in items if x.half == h][:limit]]


def telephone_band(items: list[Item], folder: Path) -> list[Item]:
    """The clips resampled to 8 kHz and band-passed to 300-3400 Hz by sox, as a phone line carries them."""
    if shutil.which("sox") is None:
        raise SystemExit("sox is not installed (scripts/system-deps.sh installs it)")
    out = []
    for item in items:
        target = folder / (Path(item.name).stem + ".8k.wav")
        # -R: sox dithers the 16-bit output, with a new random seed each run unless asked to repeat; without
        # it the telephone-band sets differed from run to run (plain CER 0.0995 vs 0.1063 on the same clips).
        cmd = ["sox", "-R", str(item.path), "-r", str(TELEPHONE_RATE), str(target), "sinc", "300-3400"]
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(dataclasses.replace(item, path=target))
    return out


def pause_after(name: str) -> float:
    """A pause of 0.6-1.8 s between two turns, fixed by the clip name."""
    return 0.6 + hashlib.sha1(name.encode("utf-8")).digest()[1] / 255 * 1.2


def synthesised_calls(clips: list[Item], folder: Path, tag: str) -> list[Item]:
    """Stereo calls of ``CLIPS_PER_CALL`` clips each (one half's clips per call): agent left, customer right."""
    from copilot.transcription.audio import SAMPLE_RATE, read_all

    calls = []
    for half in HALVES:
        pool = [c for c in clips if c.half == half]
        for number, at in enumerate(range(0, len(pool) - 1, CLIPS_PER_CALL)):
            group = pool[at : at + CLIPS_PER_CALL]
            pieces: list[tuple[int, Any]] = []
            refs = {role: "" for role in ROLES}
            length = round(0.5 * SAMPLE_RATE)
            for turn, clip in enumerate(group):
                audio, _ = read_all(clip.path)
                pieces.append((length, audio[0]))
                refs[ROLES[turn % 2]] += clip.refs["unknown"]
                length += audio.shape[1] + round(pause_after(clip.name) * SAMPLE_RATE)
            import numpy as np

            stereo = np.zeros((2, length), dtype=np.float32)
            for turn, (start, audio) in enumerate(pieces):
                stereo[turn % 2, start : start + audio.size] = audio
            target = folder / f"{tag}_{half}_{number:02d}.wav"
            write_wav(target, stereo, SAMPLE_RATE)
            calls.append(Item(target.name, target, refs, half))
    return calls


def write_wav(path: Path, audio: Any, rate: int) -> None:
    import numpy as np

    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(audio.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.T.tobytes())


def build_sets(names: list[str], limit: int | None, folder: Path) -> dict[str, list[Item]]:
    sets: dict[str, list[Item]] = {}
    real = real_clips(limit) if any(n.startswith("real") for n in names) else []
    band = telephone_band(real, folder) if {"real8", "realcalls8"} & set(names) else []
    for name in names:
        if name == "audio":
            sets[name] = shared_clips()[: limit or None]
        elif name == "calls":
            sets[name] = shared_calls()[: limit or None]
        elif name == "real16":
            sets[name] = real
        elif name == "real8":
            sets[name] = band
        elif name == "realcalls":
            sets[name] = synthesised_calls(real, folder, "call16")
        elif name == "realcalls8":
            sets[name] = synthesised_calls(band, folder, "call8")
    return sets


# ------------------------------------------------------------------------------------------ the paths


def plain_path() -> tuple[Callable[[Item], dict[str, str]], float]:
    """The loop a user writes with faster-whisper over the same model files; returns it and its load time."""
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio

    from copilot.models.provision import runtime_path

    started = time.perf_counter()
    model = WhisperModel(str(runtime_path("whisper-base")), device="cpu", compute_type="int8")
    loaded = time.perf_counter() - started

    def text(audio: Any, vad: bool) -> str:
        options = {"language": "zh", "beam_size": PLAIN_BEAM, "initial_prompt": PLAIN_PROMPT}
        segments, _info = model.transcribe(audio, vad_filter=vad, **options)
        return "".join(s.text for s in segments)

    def run(item: Item) -> dict[str, str]:
        if not item.stereo:
            return {"unknown": text(str(item.path), vad=False)}
        left, right = decode_audio(str(item.path), split_stereo=True)
        return {"agent": text(left, vad=True), "customer": text(right, vad=True)}

    return run, loaded


def by_role(segments: Any) -> dict[str, str]:
    texts: dict[str, str] = {}
    for segment in segments:
        texts[segment.speaker] = texts.get(segment.speaker, "") + segment.text
    return texts


def product_paths(config_path: str | None) -> dict[str, tuple[Callable[[Item], dict[str, str]], float]]:
    """The offline and live paths, each with its model load time."""
    from copilot.transcription.asr import load_domain_transcriber
    from copilot.transcription.playback import ReplayOptions, replay, transcribe_file
    from copilot.types import Committed

    config = load_config(config_path)
    knowledge = Path(config.knowledge_dir)
    offline_config: AsrConfig = config.asr
    started = time.perf_counter()
    offline = load_domain_transcriber(offline_config, knowledge)
    offline_load = time.perf_counter() - started

    live_config = config.asr.for_live()
    started = time.perf_counter()
    live = load_domain_transcriber(live_config, knowledge)
    partial_config = live_config.for_partials()
    partial = None if partial_config is None else load_domain_transcriber(partial_config, knowledge)
    live_load = time.perf_counter() - started

    def run_offline(item: Item) -> dict[str, str]:
        return by_role(transcribe_file(item.path, offline_config, offline).segments)

    def run_live(item: Item) -> dict[str, str]:
        events = replay(item.path, live_config, live, ReplayOptions(), partial_transcriber=partial)
        return by_role(t.event.segment for t in events if isinstance(t.event, Committed))

    return {"offline": (run_offline, offline_load), "live": (run_live, live_load)}


def timed(run: Callable[[Item], dict[str, str]], item: Item, tally: Tally) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    tally.hyps.append(run(item))
    tally.cpu += time.process_time() - cpu
    tally.wall += time.perf_counter() - wall


# ------------------------------------------------------------------------------------------ start-up

# Runs in a fresh interpreter before anything else: reports when the first WhisperModel.transcribe starts.
FIRST_DECODE_HOOK = textwrap.dedent(
    """
    import importlib.abc, importlib.util, os, sys, time
    T0 = float(os.environ["BENCH_T0"])

    class Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "faster_whisper.transcribe":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                original = module.WhisperModel.transcribe

                def transcribe(self, *a, **k):
                    if "BENCH_FIRST" not in os.environ:
                        os.environ["BENCH_FIRST"] = "1"
                        print(f"BENCH_FIRST_DECODE {time.time() - T0:.3f}", file=sys.stderr, flush=True)
                    return original(self, *a, **k)

                module.WhisperModel.transcribe = transcribe

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Hook())
    """
)

PLAIN_SCRIPT = textwrap.dedent(
    """
    from faster_whisper import WhisperModel
    from copilot.models.provision import runtime_path
    model = WhisperModel(str(runtime_path("whisper-base")), device="cpu", compute_type="int8")
    segments, _ = model.transcribe(sys.argv[1], language="zh", beam_size=5, initial_prompt="以下是普通话的句子。")
    print("".join(s.text for s in segments))
    """
)

PRODUCT_SCRIPT = textwrap.dedent(
    """
    from copilot.commands.cli import main
    sys.exit(main(["transcribe", sys.argv[1]]))
    """
)


@dataclass(frozen=True)
class Startup:
    first_decode: float  # s from process start to the first decode
    wall: float  # s to exit
    cpu: float  # s of CPU (user + system) of the whole process


def startup(script: str, clip: Path, config_file: Path) -> Startup:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "COPILOT_CONFIG": str(config_file)}
    env["BENCH_T0"] = repr(time.time())
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", FIRST_DECODE_HOOK + script, str(clip)],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"start-up run failed: {done.stderr[-2000:]}")
    first = [line for line in done.stderr.splitlines() if line.startswith("BENCH_FIRST_DECODE")]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Startup(float(first[0].split()[1]) if first else float("nan"), wall, cpu)


def measure_startup(clip: Path, config_path: str | None, folder: Path, repeats: int) -> dict[str, Startup]:
    """One-clip runs, plain script and ``copilot transcribe`` alternating; the median of each."""
    config_file = folder / "bench.toml"
    base = Path(config_path).read_text(encoding="utf-8") if config_path else ""
    config_file.write_text(base + "\n[privacy]\nredact = false\n", encoding="utf-8")
    runs: dict[str, list[Startup]] = {"plain": [], "product": []}
    for _ in range(repeats):
        runs["plain"].append(startup(PLAIN_SCRIPT, clip, config_file))
        runs["product"].append(startup(PRODUCT_SCRIPT, clip, config_file))
    return {side: sorted(r, key=lambda s: s.wall)[len(r) // 2] for side, r in runs.items()}


# ------------------------------------------------------------------------------------------ report


def set_cer(items: list[Item], hyps: list[dict[str, str]]) -> float:
    refs, outs = [], []
    for item, hyp in zip(items, hyps, strict=True):
        for role, ref in item.refs.items():
            refs.append(ref)
            outs.append(hyp.get(role, ""))
    return cer(refs, outs)


def report_rows(
    name: str, items: list[Item], tallies: dict[str, Tally], starts: dict[str, Startup] | None
) -> Iterator[dict]:
    for half in sorted({i.half for i in items}, key=lambda h: (h != "tuning", h)):
        index = [k for k, i in enumerate(items) if i.half == half]
        chosen = [items[k] for k in index]
        row: dict[str, Any] = {"set": name, "half": half, "items": len(chosen)}
        part = {p: Tally([t.hyps[k] for k in index]) for p, t in tallies.items()}
        for path, tally in tallies.items():
            part[path].cpu = tally.cpu * len(index) / len(items)  # time is kept per set; shared out by count
            part[path].wall = tally.wall * len(index) / len(items)
            row[f"cer_{path}"] = round(set_cer(chosen, part[path].hyps), 4)
            row[f"cpu_{path}"] = round(part[path].cpu, 1)
            row[f"wall_{path}"] = round(part[path].wall, 1)
        if "plain" in tallies:
            for path in tallies:
                if path == "plain":
                    continue
                row[f"cer_ratio_{path}"] = round(row[f"cer_{path}"] / max(row["cer_plain"], 1e-9), 3)
                row[f"cpu_ratio_{path}"] = round(part[path].cpu / max(part["plain"].cpu, 1e-9), 2)
                row[f"wall_ratio_{path}"] = round(part[path].wall / max(part["plain"].wall, 1e-9), 2)
                if starts is not None and path == "offline":
                    with_start = (part[path].wall + starts["product"].first_decode) / (
                        part["plain"].wall + starts["plain"].first_decode
                    )
                    row["wall_ratio_offline_with_startup"] = round(with_start, 2)
        yield row


def print_rows(rows: list[dict], paths: list[str]) -> None:
    head = f"{'set':<11}{'half':<9}{'n':>4}" + "".join(f"{'CER ' + p:>12}" for p in paths)
    others = [p for p in paths if p != "plain"] if "plain" in paths else []
    head += "".join(f"{p + '/plain':>14}{'CPU x':>7}{'wall x':>7}" for p in others)
    head += f"{'wall x +start':>14}" if "offline" in others else ""
    print(head)
    for row in rows:
        line = f"{row['set']:<11}{row['half']:<9}{row['items']:>4}"
        line += "".join(f"{row[f'cer_{p}']:>12.4f}" for p in paths)
        for p in others:
            line += (
                f"{row[f'cer_ratio_{p}']:>14.3f}{row[f'cpu_ratio_{p}']:>7.2f}{row[f'wall_ratio_{p}']:>7.2f}"
            )
        if "offline" in others:
            line += f"{row.get('wall_ratio_offline_with_startup', float('nan')):>14.2f}"
        print(line)
    print("seconds (CPU / wall) per path:")
    for row in rows:
        spent = "  ".join(f"{p} {row[f'cpu_{p}']}/{row[f'wall_{p}']}" for p in paths)
        print(f"  {row['set']:<11}{row['half']:<9} {spent}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--limit", type=int, help="at most N items per set (per half for the real clips)")
    parser.add_argument("--half", choices=HALVES, help="only this half of the real clips")
    parser.add_argument("--config", help="a TOML configuration for the product's paths")
    parser.add_argument(
        "--startup-runs", type=int, default=3, help="one-clip start-up runs per side (0: none)"
    )
    parser.add_argument("--dump", help="write every item's references and texts here (JSON lines)")
    parser.add_argument("--json", help="write the summary rows here")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench_transcription_"))
    try:
        sets = build_sets(args.sets, args.limit, folder)
        if args.half:
            sets = {n: [i for i in items if i.half in (args.half, "-")] for n, items in sets.items()}
        starts = None
        if args.startup_runs and "plain" in args.paths and "offline" in args.paths:
            # one mono clip (the first of the sets, or of ../shared/audio when only stereo calls were asked for)
            mono = [i.path for items in sets.values() for i in items if not i.stereo]
            clip = mono[0] if mono else build_sets(["audio"], 1, folder)["audio"][0].path
            starts = measure_startup(clip, args.config, folder, args.startup_runs)
            for side, s in starts.items():
                print(
                    f"start-up {side:<8} first decode {s.first_decode:.2f} s, one clip: wall {s.wall:.2f} s, CPU {s.cpu:.2f} s"
                )
        runners: dict[str, tuple[Callable[[Item], dict[str, str]], float]] = {}
        if "plain" in args.paths:
            runners["plain"] = plain_path()
        if {"offline", "live"} & set(args.paths):
            runners.update({p: r for p, r in product_paths(args.config).items() if p in args.paths})
        paths = [p for p in PATHS if p in runners]
        print("in-process model load (s): " + ", ".join(f"{p} {runners[p][1]:.2f}" for p in paths))
        rows = []
        dump = open(args.dump, "w", encoding="utf-8") if args.dump else None  # noqa: SIM115
        for name, items in sets.items():
            tallies = {p: Tally() for p in paths}
            for k, item in enumerate(items):
                order = paths[k % len(paths) :] + paths[: k % len(paths)]  # interleaved, rotating
                for path in order:
                    timed(runners[path][0], item, tallies[path])
                if dump:
                    record = {"set": name, "half": item.half, "name": item.name, "refs": item.refs}
                    record.update({p: tallies[p].hyps[-1] for p in paths})
                    dump.write(json.dumps(record, ensure_ascii=False) + "\n")
                    dump.flush()
            rows += list(report_rows(name, items, tallies, starts))
            print(f"[{name}: {len(items)} items done, load {os.getloadavg()[0]:.1f}]", flush=True)
        if dump:
            dump.close()
        print()
        print_rows(rows, paths)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
