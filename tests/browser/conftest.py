"""The app served as the README starts it (``python app.py``), driven by Debian's headless Chromium.

Each server runs on a free 127.0.0.1 port with its own review database (``COPILOT_DB``) and configuration:
``server`` (one per test session) allows two live calls, so the refusal of a third can be seen;
``default_server`` (one per test module) runs the shipped defaults, for the load test's four live calls.
The models come from the usual ``COPILOT_HOME`` (provisioned once by the suite's ``installed_models``
fixture).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.app_process import AppDidNotStart, start_app, stop_app
from tests.conftest import REPO, SHARED

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "artifacts"
START_TIMEOUT = 300.0  # s for the server to answer (imports and the index check on a loaded 2-core machine)
LIVE_SLOTS = 2
# s of bad_call.wav: the agent's rude opening (喂，什么事？), the customer's complaint and the agent's
# dismissive answer (您别激动，这没什么大不了的). The answer is in because the live path decodes greedily and
# Whisper base does not always hear the 0.7-s opening on its own; either agent line fails the greeting.
EXCERPT_SECONDS = 13.0
GREETING_SECONDS = 2.6  # s of bad_call.wav: only the agent's "喂，什么事？" (a failed greeting to listen to)
# Greedy decoding keeps the two tests that run the real ASR short on a shared 2-core machine; the audio still
# goes through the product's own streaming path, VAD and Whisper model.
ASR_BEAM = 1


@dataclass(frozen=True)
class Server:
    url: str
    db_url: str
    log: Path


@contextmanager
def serve(home: Path, config_text: str, name: str) -> Iterator[Server]:
    """``python app.py`` on a free port with ``config_text`` as its configuration; its log is kept in
    ``artifacts/{name}.log`` when it stops."""
    config = home / "copilot.toml"
    config.write_text(config_text, encoding="utf-8")
    db_url = f"sqlite:///{home / 'copilot.db'}"
    log = home / "app.log"
    env = {**os.environ, "COPILOT_DB": db_url, "COPILOT_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    process = None
    try:
        try:
            process, url = start_app(env, log, START_TIMEOUT)
        except AppDidNotStart as e:
            pytest.fail(str(e))
        yield Server(url, db_url, log)
    finally:  # the log is kept whether the app started or not
        if process is not None:
            stop_app(process)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"{name}.log").write_text(log.read_text(errors="replace"))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, installed_models: None) -> Iterator[Server]:
    """Two live calls allowed, so the refusal of a third can be seen."""
    config = f"[app]\nmax_live_sessions = {LIVE_SLOTS}\n\n[asr]\nbeam_size = {ASR_BEAM}\n"
    with serve(tmp_path_factory.mktemp("app"), config, "browser_app") as running:
        yield running


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory, installed_models: None) -> Iterator[Server]:
    """The shipped defaults (the live-call limit included); per module, so it stops when its tests end."""
    with serve(
        tmp_path_factory.mktemp("app_default"), "# the shipped defaults\n", "browser_app_default"
    ) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _excerpt(folder: Path, name: str, seconds: float) -> Path:
    """The first seconds of the stereo bad call, as a recording of its own (uploaded like any call)."""
    from copilot.transcription.audio import SAMPLE_RATE, read_all
    from tests.fakes_asr import write_wav

    audio, _ = read_all(SHARED / "calls" / "bad_call.wav")
    path = folder / name
    write_wav(path, audio[:, : int(seconds * SAMPLE_RATE)])
    return path


@pytest.fixture(scope="session")
def excerpt_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _excerpt(tmp_path_factory.mktemp("calls"), "bad_call_opening.wav", EXCERPT_SECONDS)


@pytest.fixture(scope="session")
def greeting_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _excerpt(tmp_path_factory.mktemp("calls"), "bad_call_greeting.wav", GREETING_SECONDS)


def screenshot(page: object, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser_{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
