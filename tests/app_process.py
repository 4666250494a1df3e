"""``python app.py`` as the README starts it, on a free 127.0.0.1 port, for the browser tests and
``eval/bench_load.py``: start it, wait until its page answers, stop it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POLL_SECONDS = 1.0
STOP_SECONDS = 30.0  # s a stopping app gets before it is killed


class AppDidNotStart(RuntimeError):
    """The app exited or did not answer in time; the message ends with its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def start_app(env: dict[str, str], log: Path, timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    """Start the app with ``env``, its output in ``log``; return it and its URL once the page answers."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AppDidNotStart(f"the app exited with {process.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_app(process)
            raise AppDidNotStart(f"the app did not answer on {url}:\n{log_tail(log)}")
        time.sleep(POLL_SECONDS)


def stop_app(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
