"""Privacy audit, end to end: personal numbers never leave the product unmasked unless configured.

A call carrying a mobile number (written and spoken), an 18-digit ID-card number, a bank-card number and an
e-mail address goes through ``review --out`` (database, HTML/CSV/JSON reports, batch.json), ``review``,
``summarize`` (with the LLM), ``replay --json``, ``check --json``, ``transcribe`` (JSON, text and live) and
a failing input whose wrong-typed fields hold a number. Every file written, the SQLite database's bytes
(with its WAL) and every stdout/stderr are scanned for the raw values. With ``[privacy] redact = false``
the same values do appear, so the scan is not vacuous. Raw audio is copied into the store only with
``[privacy] keep_audio = true``.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from copilot.commands.cli import main
from copilot.transcription.redact import MASKS
from tests import badinput
from tests.fakes_asr import EnergyVad, Line, ScriptedTranscriber, tone_track, write_wav

CHILD_TIMEOUT = 1800  # s: safety net only

RAW: dict[str, str] = {
    "mobile": "13812345678",
    "spoken mobile": "幺三九八七六五四三二一",
    "spoken mobile as digits": "13987654321",
    "ID card": "110105194912310021",
    "bank card": "6222021234567890123",
    "e-mail": "zhangsan.test@example.com",
    "WeChat id": "zhangsan_2024",
    "QQ number": "83726154",
    "address": "建国路88号3单元502室",
    "name": "王建国",
}

SEGMENTS = [
    ("agent", 0.5, 5.0, "您好，欢迎致电美家电器售后服务中心，我是客服小李，请问有什么可以帮您？"),
    ("customer", 5.5, 12.0, f"洗衣机坏了，我的手机号是{RAW['mobile']}，你们快点派人来修，我都气死了！"),
    ("agent", 12.5, 18.0, "非常抱歉给您带来不便。请提供一下您的身份证号码和银行卡号，我帮您登记。"),
    (
        "customer",
        18.5,
        26.0,
        f"身份证是{RAW['ID card']}，银行卡号{RAW['bank card']}，邮箱{RAW['e-mail']}。",
    ),
    ("agent", 26.5, 30.0, f"好的，您的备用号码是{RAW['spoken mobile']}对吗？我给您发短信。"),
    (
        "customer",
        30.5,
        32.0,
        f"对，{RAW['spoken mobile']}。我叫{RAW['name']}，地址是北京市朝阳区{RAW['address']}，"
        f"微信号{RAW['WeChat id']}，QQ号{RAW['QQ number']}。",
    ),
    ("agent", 32.5, 37.0, "已经为您登记，我们会尽快安排师傅上门，您看还有其他问题吗？"),
    ("customer", 37.5, 39.0, "没有了，谢谢。"),
    ("agent", 39.5, 42.0, "感谢您的来电，祝您生活愉快，再见！"),
]


def write_pii_call(folder: Path) -> Path:
    path = folder / "pii_call.json"
    segments = [{"role": r, "start": s, "end": e, "text": t} for r, s, e, t in SEGMENTS]
    path.write_text(
        json.dumps({"name": "pii_call", "segments": segments}, ensure_ascii=False), encoding="utf-8"
    )
    return path


def write_pii_failure(folder: Path) -> Path:
    """A transcript refused for wrong-typed fields that hold personal numbers (errors quote bad values)."""
    path = folder / "pii_broken.json"
    segment = {"role": RAW["mobile"], "start": RAW["ID card"], "end": 1, "text": "x"}
    path.write_text(json.dumps({"segments": [segment]}, ensure_ascii=False), encoding="utf-8")
    return path


def _forms(raw: str) -> set[bytes]:
    """The byte strings a raw value would take in a file: UTF-8, JSON with ASCII escapes, HTML, URLs."""
    return {
        raw.encode("utf-8"),
        json.dumps(raw)[1:-1].encode("ascii"),
        html.escape(raw).encode("utf-8"),
        urllib.parse.quote(raw).encode("ascii"),
    }


def leaks_in(data: bytes, where: str) -> list[str]:
    return [f"{kind} in {where}" for kind, raw in RAW.items() if any(f in data for f in _forms(raw))]


def leaks_in_files(paths: Iterable[Path]) -> list[str]:
    found: list[str] = []
    for path in paths:
        if path.is_file():
            found += leaks_in(path.read_bytes(), str(path))
    return found


def files_under(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "copilot.commands.cli", *args],
        capture_output=True,
        timeout=CHILD_TIMEOUT,
        env={**os.environ, **env},
        cwd=badinput.REPO,
    )


def _unredacted_config(folder: Path, **privacy: bool) -> Path:
    path = folder / "privacy.toml"
    values = {"redact": False, **privacy}
    body = "\n".join(f"{k} = {'true' if v else 'false'}" for k, v in values.items())
    path.write_text(f"[privacy]\n{body}\n", encoding="utf-8")
    return path


# ---- the audit over every command ----------------------------------------------------------------


@pytest.mark.real
def test_no_raw_number_anywhere_after_every_command(tmp_path: Path, installed_models: None) -> None:
    inputs, out, db_dir = tmp_path / "in", tmp_path / "out", tmp_path / "db"
    for folder in (inputs, out, db_dir):
        folder.mkdir()
    call = write_pii_call(inputs)
    broken = write_pii_failure(inputs)
    utterances = inputs / "utterances.txt"
    utterances.write_text("\n".join(text for _r, _s, _e, text in SEGMENTS), encoding="utf-8")
    env = {"COPILOT_DB": f"sqlite:///{db_dir / 'copilot.db'}"}
    lexical = (
        inputs / "lexical.toml"
    )  # replay's suggestions without loading the embedder (the LLM is in summarize)
    lexical.write_text('[retrieval]\nmode = "bm25"\n', encoding="utf-8")
    runs = {
        "review --out": run_cli(
            ["review", "--json", "--no-progress", "--out", str(out), str(call), str(broken)], env
        ),
        "review": run_cli(["review", "--json", str(call), str(broken)], env),
        "summarize": run_cli(["summarize", "--json", str(call)], env),
        "replay": run_cli(["--config", str(lexical), "replay", "--no-llm", "--json", str(call)], env),
        "check": run_cli(["check", "--json", "--role", "customer", "--file", str(utterances)], env),
        "check text": run_cli(["check", SEGMENTS[1][3], SEGMENTS[3][3]], env),
    }
    expected_codes = {"review --out": 1, "review": 4}  # the broken input fails; everything else succeeds
    for name, done in runs.items():
        assert done.returncode == expected_codes.get(name, 0), (name, done.stderr[-2000:])
        assert b"Traceback" not in done.stderr
    written = files_under(out, db_dir)
    names = {p.name for p in written}
    assert {"batch.json", "index.html", "reviews.csv", "reviews.json", "copilot.db"} <= names
    assert any(p.suffix == ".html" and p.parent.name == "calls" for p in written)
    leaks = leaks_in_files(written)
    for name, done in runs.items():
        leaks += leaks_in(done.stdout, f"{name} stdout") + leaks_in(done.stderr, f"{name} stderr")
    assert leaks == []
    # Not vacuous: the call really went everywhere, masked.
    everything = b"".join(p.read_bytes() for p in written) + b"".join(d.stdout for d in runs.values())
    for mask in MASKS.values():
        if mask != MASKS["landline"]:  # the call has every kind but a landline
            assert mask.encode() in everything or json.dumps(mask)[1:-1].encode() in everything, mask
    summary = json.loads(runs["summarize"].stdout)
    assert summary["model"] and summary["text"]  # the LLM wrote a summary, and it was scanned too
    batch = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert batch["reviewed"] == 1 and batch["failed"] == 1


def test_with_redaction_off_the_numbers_are_kept(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[privacy] redact = false`` works: the same commands keep the raw values (so the audit can see them)."""
    call = write_pii_call(tmp_path)
    out, db = tmp_path / "out", tmp_path / "db.sqlite"
    config = _unredacted_config(tmp_path)
    monkeypatch.setenv("COPILOT_DB", f"sqlite:///{db}")
    assert (
        main(["--config", str(config), "review", "--json", "--no-progress", "--out", str(out), str(call)])
        == 0
    )
    assert main(["--config", str(config), "check", "--json", SEGMENTS[3][3]]) == 0
    stdout = capfd.readouterr().out.encode()
    kept = {
        leak.split(" in ")[0] for leak in leaks_in_files(files_under(out)) + leaks_in(db.read_bytes(), "db")
    }
    assert {"mobile", "spoken mobile", "ID card", "bank card", "e-mail"} <= kept
    assert {leak.split(" in ")[0] for leak in leaks_in(stdout, "stdout")} >= {
        "ID card",
        "bank card",
        "e-mail",
    }


# ---- transcription outputs (a scripted recogniser that "hears" the numbers) ------------------------

HEARD = (
    Line(0.5, 3.0, f"我的手机号是{RAW['mobile']}"),
    Line(4.0, 6.5, f"身份证{RAW['ID card']}，卡号{RAW['bank card']}"),
    Line(7.5, 9.5, f"邮箱{RAW['e-mail']}，备用{RAW['spoken mobile']}"),
)


@pytest.fixture()
def heard_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A mono recording with speech-like tones where the scripted recogniser hears the numbers."""
    import copilot.transcription.asr
    import copilot.transcription.playback

    path = tmp_path / "call.wav"
    write_wav(path, tone_track([(x.start, x.end) for x in HEARD], 10.5)[None, :])
    monkeypatch.setattr(
        copilot.transcription.asr, "load_transcriber", lambda *_a, **_k: ScriptedTranscriber(HEARD)
    )
    monkeypatch.setattr(copilot.transcription.playback, "SileroVad", EnergyVad)
    return path


def test_transcribe_outputs_and_logs_are_redacted(
    heard_call: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.transcription.playback import transcribe_file
    from copilot.transcription.transcript_files import write_transcript

    monkeypatch.setenv("COPILOT_DB", f"sqlite:///{tmp_path / 'db.sqlite'}")
    commands = [
        ["transcribe", "--json", "--words", str(heard_call)],
        ["transcribe", str(heard_call)],
        ["transcribe", "--live", "--json", "--speed", "200", str(heard_call)],
        ["review", "--json", str(heard_call)],
    ]
    for args in commands:
        assert main(args) == 0, args
    out, err = capfd.readouterr()
    heard = "".join(line.text for line in HEARD)
    assert MASKS["mobile"] in out and MASKS["email"] in out  # it did hear them
    assert leaks_in(out.encode(), "stdout") == [] and leaks_in(err.encode(), "stderr") == []
    # Word timings cut a number into pieces: the pieces put back together must not give it back.
    first = json.loads(out.splitlines()[0])
    words = "".join(w["text"] for s in first["segments"] for w in s["words"])
    assert len(first["segments"]) == len(HEARD) and MASKS["bank_card"] in words
    assert leaks_in(words.encode(), "words") == []
    import copilot.transcription.asr
    from copilot.config import Config

    transcript = transcribe_file(
        heard_call, Config().asr, copilot.transcription.asr.load_transcriber(Config().asr)
    )
    assert "".join(s.text for s in transcript.segments) == heard  # the library keeps raw text in memory
    saved = tmp_path / "saved.json"
    write_transcript(transcript, saved)
    assert leaks_in(saved.read_bytes(), "write_transcript") == []
    # And with redaction off the same command prints them.
    assert main(["--config", str(_unredacted_config(tmp_path)), "transcribe", "--json", str(heard_call)]) == 0
    assert "mobile" in {leak.split(" in ")[0] for leak in leaks_in(capfd.readouterr().out.encode(), "stdout")}


# ---- raw audio in the store ------------------------------------------------------------------------


def _copies(audio: Path, folders: Iterable[Path]) -> list[Path]:
    digest = hashlib.sha256(audio.read_bytes()).hexdigest()
    return [p for p in files_under(*folders) if hashlib.sha256(p.read_bytes()).hexdigest() == digest]


@pytest.mark.parametrize("keep_audio", [False, True])
def test_raw_audio_is_kept_only_when_configured(
    heard_call: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_audio: bool
) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    monkeypatch.setenv("COPILOT_HOME", str(home))
    monkeypatch.setenv("COPILOT_DB", f"sqlite:///{home / 'copilot.db'}")
    config = _unredacted_config(tmp_path, keep_audio=keep_audio)
    config.write_text(
        config.read_text(encoding="utf-8").replace("redact = false", "redact = true"), encoding="utf-8"
    )
    assert (
        main(
            ["--config", str(config), "review", "--json", "--no-progress", "--out", str(out), str(heard_call)]
        )
        == 0
    )
    copies = _copies(heard_call, [home, out])
    data = heard_call.read_bytes()
    pcm = data[len(data) // 4 : len(data) // 4 + 4096]  # samples at ~2.6 s, inside the first spoken line
    db_bytes = b"".join(p.read_bytes() for p in home.glob("copilot.db*"))
    assert pcm not in db_bytes
    if keep_audio:
        digest = hashlib.sha256(heard_call.read_bytes()).hexdigest()
        assert copies == [home / "audio" / f"{digest}.wav"]
    else:
        assert copies == [] and not (home / "audio").exists()
    assert np.any(np.frombuffer(pcm, dtype="<i2"))  # the stretch compared is sound, not silence
