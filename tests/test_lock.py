"""The hash-pinned lock that `make` installs from agrees with pyproject.toml's exact pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(path: Path) -> dict[str, tuple[str, int]]:
    """package -> (version, number of hashes) of a pip requirements file written with hashes."""
    out: dict[str, tuple[str, int]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = _name(match.group(1))
            out[current] = (match.group(2), 0)
        elif "--hash=sha256:" in line and current:
            version, hashes = out[current]
            out[current] = (version, hashes + 1)
    return out


def test_every_pyproject_pin_is_locked_at_its_version_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    locked = _locked(REPO / "requirements.lock") | _locked(REPO / "requirements-no-deps.lock")
    assert all(hashes > 0 for _, hashes in locked.values())
    mismatched = []
    for requirement in wanted:
        match = PIN.match(requirement)
        assert match, f"{requirement}: pyproject.toml pins exact versions"
        name, version = _name(match.group(1)), match.group(2)
        if locked.get(name, ("",))[0].split("+")[0] != version:  # torch 2.13.0 is locked as 2.13.0+cpu
            mismatched.append(f"{name}=={version} (lock: {locked.get(name, ('missing',))[0]})")
    assert not mismatched, "run `make lock`: " + ", ".join(mismatched)
    assert "openai-whisper" in locked and "triton" not in locked
