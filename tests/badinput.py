"""Generators of bad and awkward input files, made inside a test's temporary folder.

Nothing binary is committed: every file is written here from a few bytes of code, from the shared
recordings (``../shared/audio``, ``../shared/calls``) or by ``ffmpeg``. Large inputs are made without
holding them in memory: the one-hour silence is encoded by ffmpeg as it is generated, and the 2-GB file
is sparse (``truncate``), so it costs no disk and no time to make.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# A real 4.2-s Mandarin utterance (mono 16 kHz) with its reference text.
SPEECH = SHARED / "audio" / "firered_BAC009S0764W0121.wav"
SPEECH_TEXT = "甚至出现交易几乎停滞的情况"
GOOD_CALLS = (SHARED / "calls" / "good_call.json", SHARED / "calls" / "bad_call.json")

SPARSE_SIZE = 2 * 1024**3  # bytes: the "2-GB file"
RANDOM_SIZE = 64 * 1024  # bytes of random noise
HOUR = 3600.0  # s
RATES = (8000, 22050, 44100, 48000)  # Hz: telephone, and the common consumer rates
# Extension -> ffmpeg audio encoder for the compressed formats a recorder or phone may produce.
CODECS = {"mp3": "libmp3lame", "flac": "flac", "ogg": "libvorbis", "m4a": "aac"}
FFMPEG_TIMEOUT = 300  # s: a safety net only


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=FFMPEG_TIMEOUT,
    )


# ---- bad audio -----------------------------------------------------------------------------------


def empty(folder: Path, name: str = "empty.wav") -> Path:
    """A file of zero bytes."""
    path = folder / name
    path.write_bytes(b"")
    return path


def zero_length_wav(folder: Path) -> Path:
    """A well-formed WAV header announcing no frames at all."""
    path = folder / "zero_length.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"")
    return path


def text_as_wav(folder: Path) -> Path:
    """A text file renamed .wav."""
    path = folder / "notes.wav"
    path.write_text("客户回访记录：周三上午上门维修。\nThis is not audio.\n", encoding="utf-8")
    return path


def truncated_header(folder: Path) -> Path:
    """The first 30 bytes of a real WAV: the RIFF header is cut in the middle of the fmt chunk."""
    path = folder / "truncated.wav"
    path.write_bytes(SPEECH.read_bytes()[:30])
    return path


def random_bytes(folder: Path, name: str = "random.wav", size: int = RANDOM_SIZE, seed: int = 11) -> Path:
    """Seeded random noise (the same bytes on every run)."""
    path = folder / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def six_channels(folder: Path, seconds: float = 2.0) -> Path:
    """A 5.1 WAV: a tone on every one of six channels."""
    path = folder / "surround.wav"
    t = np.arange(int(seconds * 16000)) / 16000
    tone = (0.2 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    frames = np.repeat(tone[:, None], 6, axis=1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(6)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(frames.tobytes())
    return path


def sparse(folder: Path, name: str, size: int = SPARSE_SIZE) -> Path:
    """A sparse file of ``size`` zero bytes, as ``truncate -s 2G`` makes: instant, and no disk used."""
    path = folder / name
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def silence(folder: Path, seconds: float, name: str = "silence.flac", rate: int = 16000) -> Path:
    """Mono digital silence, encoded by ffmpeg as it is generated (an hour is ~1 MB of FLAC)."""
    path = folder / name
    source = f"anullsrc=r={rate}:cl=mono"
    _ffmpeg("-f", "lavfi", "-i", source, "-t", f"{seconds:g}", "-c:a", "flac", str(path))
    return path


# ---- good audio in awkward shapes ----------------------------------------------------------------


def resampled(folder: Path, rate: int, source: Path = SPEECH) -> Path:
    """``source`` as a 16-bit WAV at ``rate`` Hz."""
    path = folder / f"speech_{rate}.wav"
    _ffmpeg("-i", str(source), "-ar", str(rate), "-c:a", "pcm_s16le", str(path))
    return path


def encoded(folder: Path, extension: str, source: Path = SPEECH) -> Path:
    """``source`` encoded as mp3, flac, ogg (Vorbis) or m4a (AAC)."""
    path = folder / f"speech.{extension}"
    _ffmpeg("-i", str(source), "-c:a", CODECS[extension], str(path))
    return path


def stereo_call(folder: Path, source: Path = SPEECH) -> Path:
    """``source`` on the right (customer) channel of a stereo WAV, silence on the left (agent)."""
    path = folder / "stereo_call.wav"
    _ffmpeg("-i", str(source), "-af", "pan=stereo|c0=0*c0|c1=c0", "-c:a", "pcm_s16le", str(path))
    return path


# ---- bad transcripts -----------------------------------------------------------------------------


def _segment(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "role": "agent",
        "start": 0.0,
        "end": 2.0,
        "text": "您好，请问有什么可以帮您？",
    }
    base.update(fields)
    return base


# name -> the raw text of a JSON transcript that must be refused with a TranscriptError.
BAD_TRANSCRIPTS: dict[str, str] = {
    "not_json": '{"segments": [',
    "array": "[1, 2, 3]",
    "no_segments": '{"name": "x", "duration": 3}',
    "segments_object": '{"segments": {"role": "agent"}}',
    "segment_not_object": '{"segments": ["您好"]}',
    "missing_text": json.dumps({"segments": [{"role": "agent", "start": 0, "end": 1}]}),
    "missing_times": json.dumps({"segments": [{"role": "agent", "text": "您好"}]}),
    "role_unknown": json.dumps({"segments": [_segment(role="boss")]}, ensure_ascii=False),
    "role_number": json.dumps({"segments": [_segment(role=1)]}, ensure_ascii=False),
    "start_string": json.dumps({"segments": [_segment(start="0")]}, ensure_ascii=False),
    "start_bool": json.dumps({"segments": [_segment(start=True)]}, ensure_ascii=False),
    "text_number": json.dumps({"segments": [_segment(text=12)]}, ensure_ascii=False),
    "text_null": json.dumps({"segments": [_segment(text=None)]}, ensure_ascii=False),
    "negative_time": json.dumps({"segments": [_segment(start=-1)]}, ensure_ascii=False),
    "ends_before_start": json.dumps({"segments": [_segment(start=5, end=1)]}, ensure_ascii=False),
    "nan_time": '{"segments": [{"role": "agent", "start": NaN, "end": 1, "text": "x"}]}',
    "infinite_time": '{"segments": [{"role": "agent", "start": 0, "end": Infinity, "text": "x"}]}',
    "duration_string": json.dumps({"duration": "90", "segments": []}),
    "huge_integer": '{"segments": [{"role": "agent", "start": 0, "end": 1' + "0" * 5000 + ', "text": "x"}]}',
    "deep_nesting": "[" * 100_000 + "]" * 100_000,
    "latin1": "not utf-8: caf\xe9",  # written as Latin-1 by write_bad_transcripts
}


def write_bad_transcripts(folder: Path) -> dict[str, Path]:
    """Every entry of :data:`BAD_TRANSCRIPTS` as ``folder/NAME.json``."""
    out = {}
    for name, text in BAD_TRANSCRIPTS.items():
        path = folder / f"{name}.json"
        path.write_bytes(text.encode("latin-1" if name == "latin1" else "utf-8"))
        out[name] = path
    return out


def traditional(source: Path, folder: Path) -> Path:
    """``source`` (a Simplified-Chinese JSON transcript) with every text in Traditional characters."""
    from opencc import OpenCC

    s2t = OpenCC("s2t")
    data = json.loads(source.read_text(encoding="utf-8"))
    for segment in data["segments"]:
        segment["text"] = s2t.convert(segment["text"])
    path = folder / f"{source.stem}.traditional.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def with_bom(source: Path, folder: Path) -> Path:
    """``source`` saved with a UTF-8 byte-order mark, as Windows Notepad does."""
    path = folder / f"{source.stem}.bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    return path


# ---- knowledge folders ---------------------------------------------------------------------------


def knowledge_copy(folder: Path, handbooks: int = 1) -> Path:
    """A knowledge folder with the first ``handbooks`` real handbooks and the curated inputs."""
    source = REPO / "knowledge"
    target = folder / "knowledge"
    (target / "raw").mkdir(parents=True)
    for name in ("ingest_rules.yaml", "scripts_custom.yaml", "vocabulary_custom.txt", "guidelines_custom.md"):
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    for path in sorted((source / "raw").iterdir())[:handbooks]:
        shutil.copy(path, target / "raw" / path.name)
        os.chmod(target / "raw" / path.name, 0o644)
    return target


def bad_handbooks() -> dict[str, bytes]:
    """Handbook files that cannot be used: file name -> content (each is put alone into a knowledge folder)."""
    noise = random.Random(5).randbytes(RANDOM_SIZE)
    return {
        "binary.txt": noise,
        "binary.md": b"\x00\x01\x02" + noise,
        "binary.pdf": noise,
        "binary.docx": noise,
        "text_as.pdf": "这不是PDF。".encode(),
        "text_as.docx": "这也不是Word文件。".encode(),
    }
