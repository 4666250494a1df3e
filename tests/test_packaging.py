"""The built wheel works outside the checkout: knowledge ships inside the package, no ../shared needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.real
def test_the_wheel_installed_elsewhere_checks_a_line_and_reviews_a_transcript(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True
    )
    # the dependencies come from this environment's site-packages; the copilot package only from the wheel
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    call = elsewhere / "CALL.json"
    call.write_text(
        json.dumps(
            {
                "segments": [
                    {
                        "role": "agent",
                        "start": 0.0,
                        "end": 2.0,
                        "text": "您好，这里是售后服务中心，我是小王。",
                    },
                    {"role": "customer", "start": 2.5, "end": 5.0, "text": "我家洗衣机不脱水了。"},
                    {"role": "agent", "start": 5.5, "end": 8.0, "text": "您别激动，这没什么大不了的。"},
                ]
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "COPILOT_SHARED": str(tmp_path / "no-shared")}
    copilot = [str(python), "-m", "copilot.commands.cli"]
    where = subprocess.run(
        [str(python), "-c", "import copilot; print(copilot.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(REPO) not in where  # the installed package, not the checkout
    checked = subprocess.run(
        [*copilot, "check", "您别激动，这没什么大不了的", "--role", "agent", "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["flags"], "the forbidden wording must be flagged"
    reviewed = subprocess.run(
        [*copilot, "review", "CALL.json", "--json"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert reviewed.returncode == 0, reviewed.stderr
    review = json.loads(reviewed.stdout)
    assert review["checks"] and 0 <= review["score"] <= 100
