"""Bad and awkward audio through the decoder, ``copilot transcribe`` and ``copilot review``.

Every bad file must give a typed :class:`AudioError` in the library and, on the command line, a non-zero
exit with one ``copilot: error:`` line naming the file and no traceback. Good audio at any rate or in any
common codec must decode to the same signal and transcribe to the same words. Long and huge inputs must
finish with bounded memory (measured with ``getrusage`` in a child process; subprocess timeouts are only a
safety net, never an assertion).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.commands.cli import main
from copilot.errors import AudioError
from copilot.transcription.audio import SAMPLE_RATE, read_all, read_chunks
from tests import badinput

CHILD_TIMEOUT = 1800  # s: safety net for a child process on a shared, busy machine (never asserted on)
ENVELOPE_FRAME = 0.05  # s: frames of the loudness envelope compared between two decodings
MIN_ENVELOPE_CORRELATION = 0.9
DURATION_TOLERANCE = 0.1  # s: codecs add or trim a little padding
MAX_CER = 0.3  # the clip transcribes with CER ~0.08; other formats may cost a character or two
# A one-hour mono 48-kHz file held whole would take 330 MB as decoded 16-bit samples and 230 MB as 16-kHz
# float32; streaming keeps a few chunks. Allowed growth of the peak RSS over a 20-s file of the same kind:
MAX_HOUR_GROWTH_KB = 100 * 1024

BAD_AUDIO: dict[str, Callable[[Path], Path]] = {
    "empty": badinput.empty,
    "zero-length": badinput.zero_length_wav,
    "text renamed .wav": badinput.text_as_wav,
    "truncated header": badinput.truncated_header,
    "random bytes": badinput.random_bytes,
    "six channels": badinput.six_channels,
    "2-GB sparse": lambda folder: badinput.sparse(folder, "huge.wav"),
}


@pytest.fixture(scope="module")
def bad_audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_audio")
    return {kind: make(folder) for kind, make in BAD_AUDIO.items()}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real clip at every rate and in every codec."""
    folder = tmp_path_factory.mktemp("variants")
    out = {f"{rate} Hz": badinput.resampled(folder, rate) for rate in badinput.RATES}
    out.update({ext: badinput.encoded(folder, ext) for ext in badinput.CODECS})
    return out


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("copilot:")]


def assert_one_line_error(stderr: str, path: Path) -> str:
    """stderr holds exactly one line, a ``copilot: error:`` naming ``path``, and no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("copilot: error: ") and path.name in lines[0], lines[0]
    return lines[0]


# ---- the decoder ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BAD_AUDIO)
def test_bad_audio_raises_a_one_line_audio_error(bad_audio: dict[str, Path], kind: str) -> None:
    path = bad_audio[kind]
    with pytest.raises(AudioError) as caught:
        for _chunk in read_chunks(path):
            pass
    message = str(caught.value)
    assert "\n" not in message and path.name in message


def _envelope(audio: np.ndarray) -> np.ndarray:
    frame = int(ENVELOPE_FRAME * SAMPLE_RATE)
    mono = audio.mean(axis=0)
    usable = len(mono) // frame * frame
    return np.sqrt(np.mean(np.square(mono[:usable].reshape(-1, frame)), axis=1))


@pytest.mark.parametrize("variant", [f"{r} Hz" for r in badinput.RATES] + list(badinput.CODECS))
def test_every_rate_and_codec_decodes_to_the_same_signal(variants: dict[str, Path], variant: str) -> None:
    reference, ref_duration = read_all(badinput.SPEECH)
    audio, duration = read_all(variants[variant])
    assert audio.shape[0] == 1 and audio.dtype == np.float32
    assert duration == pytest.approx(ref_duration, abs=DURATION_TOLERANCE)
    a, b = _envelope(reference), _envelope(audio)
    n = min(len(a), len(b))
    assert float(np.corrcoef(a[:n], b[:n])[0, 1]) > MIN_ENVELOPE_CORRELATION


# ---- the commands, in process (the real ASR model, loaded once) ------------------------------------


@pytest.fixture(scope="module")
def real_transcriber(installed_models: None) -> Any:
    from copilot.config import Config
    from copilot.transcription.asr import load_transcriber

    return load_transcriber(Config().asr)


@pytest.fixture()
def loaded_once(real_transcriber: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The commands load the ASR model per invocation; here they all get the one real model."""
    import copilot.transcription.asr

    monkeypatch.setattr(
        copilot.transcription.asr, "load_transcriber", lambda *_args, **_kwargs: real_transcriber
    )
    yield


@pytest.mark.real
@pytest.mark.parametrize("command", ["transcribe", "review"])
@pytest.mark.parametrize("kind", BAD_AUDIO)
def test_each_bad_audio_file_fails_the_command_with_one_line(
    bad_audio: dict[str, Path],
    kind: str,
    command: str,
    loaded_once: None,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COPILOT_DB", f"sqlite:///{tmp_path / 'copilot.db'}")
    path = bad_audio[kind]
    code = main([command, str(path)])
    out, err = capfd.readouterr()
    assert code == AudioError.exit_code and out == ""
    assert_one_line_error(err, path)


# ---- the real command line -----------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copilot.commands.cli", *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        env={**os.environ, **(env or {})},
        cwd=badinput.REPO,
    )


@pytest.mark.real
def test_transcribe_batch_with_bad_files_transcribes_the_good_ones(
    bad_audio: dict[str, Path], variants: dict[str, Path], installed_models: None
) -> None:
    import jiwer

    good = [variants["8000 Hz"], variants["m4a"]]
    bad = list(bad_audio.values())
    done = run_cli("transcribe", "--json", str(good[0]), *map(str, bad), str(good[1]))
    assert done.returncode == AudioError.exit_code
    assert "Traceback" not in done.stderr
    errors = error_lines(done.stderr)
    assert len(errors) == len(bad)  # one line per bad file, in order
    for line, path in zip(errors, bad, strict=True):
        assert line.startswith("copilot: error: ") and path.name in line
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["file"] for row in rows] == [str(p) for p in good]
    for row in rows:
        text = "".join(s["text"] for s in row["segments"])
        assert jiwer.cer(badinput.SPEECH_TEXT, text.rstrip("。")) <= MAX_CER, text


_PEAK_SCRIPT = """
import json, sys
from copilot.commands.cli import main
code = main(["transcribe", "--json", sys.argv[2]])
# VmHWM (KB), not ru_maxrss, which Linux carries over from the parent pytest process across fork+exec.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "peak_kb": peak}, out)
"""


def _transcribe_measured(path: Path, report: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``copilot transcribe --json path`` in a fresh child process: (its exit code and peak RSS, its rows)."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(report), str(path)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        cwd=badinput.REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(report.read_text()), [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.real
def test_an_hour_of_silence_finishes_empty_with_bounded_memory(
    tmp_path: Path, installed_models: None
) -> None:
    short = badinput.silence(tmp_path, 20.0, "short.flac", rate=48000)
    hour = badinput.silence(tmp_path, badinput.HOUR, "hour.flac", rate=48000)
    short_run, short_rows = _transcribe_measured(short, tmp_path / "short.json")
    hour_run, hour_rows = _transcribe_measured(hour, tmp_path / "hour.json")
    assert short_run["code"] == hour_run["code"] == 0
    assert [row["segments"] for row in short_rows + hour_rows] == [[], []]  # no speech, no hallucination
    assert hour_rows[0]["duration"] == pytest.approx(badinput.HOUR, abs=0.5)
    growth = hour_run["peak_kb"] - short_run["peak_kb"]
    assert growth < MAX_HOUR_GROWTH_KB, (short_run, hour_run)
