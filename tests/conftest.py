"""Shared fixtures.

The real models are provisioned once per test session into ``$COPILOT_HOME`` (the README's setup does the
same, so this is a quick verification there; on a bare checkout it assembles and converts them).

Every test runs with a ``COPILOT_HOME`` of its own (a fresh folder), so no test reads or writes the
developer's database, results or kept audio. Tests marked ``real`` or ``browser`` see the provisioned
models and retrieval index there through links; the others see none, so a test that loads a real model
without saying so fails in the fast tier instead of silently taking minutes.

Tiers (``make test-fast`` runs the first): unmarked tests use fakes and pure code; ``services`` starts
PostgreSQL or Ray; ``real`` loads packaged models on real input; ``browser`` drives headless Chromium.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub here: never try to download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


REAL_HOME_LINKS = ("models", "index")  # what a real-model test needs from the provisioned home


def _provisioned_home() -> Path:
    from copilot.config import copilot_home

    return copilot_home()


PROVISIONED_HOME = _provisioned_home()  # read before any test changes COPILOT_HOME


@pytest.fixture(autouse=True)
def copilot_home_per_test(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path / "copilot-home"
    home.mkdir()
    if request.node.get_closest_marker("real") or request.node.get_closest_marker("browser"):
        for name in REAL_HOME_LINKS:
            (PROVISIONED_HOME / name).mkdir(parents=True, exist_ok=True)
            (home / name).symlink_to(PROVISIONED_HOME / name, target_is_directory=True)
    monkeypatch.setenv("COPILOT_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"{SHARED} is missing: the shared data must sit beside the repository"
    return SHARED


@pytest.fixture(scope="session")
def installed_models() -> None:
    """Install (or verify) every default packaged model."""
    from copilot.models import provision

    # into the provisioned home, whichever test asks first (its own home only links to it)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPILOT_HOME", str(PROVISIONED_HOME))
        provision.install_defaults(log=lambda _message: None)


def _runtime(name: str) -> Path:
    from copilot.models import provision

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPILOT_HOME", str(PROVISIONED_HOME))
        return provision.runtime_path(name)


@pytest.fixture(scope="session")
def whisper_ct2_dir(installed_models: None) -> Path:
    return _runtime("whisper-base")


@pytest.fixture(scope="session")
def whisper_openai_pt(installed_models: None) -> Path:
    return _runtime("whisper-base-openai")


@pytest.fixture(scope="session")
def e5_dir(installed_models: None) -> Path:
    return _runtime("e5-small")


@pytest.fixture(scope="session")
def qwen_dir(installed_models: None) -> Path:
    return _runtime("qwen2.5-coder-0.5b")
