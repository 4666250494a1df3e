"""Hashes that decide whether a call was already reviewed: its content, and what reviewed it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from copilot.config import Config
from copilot.qa.store.records import Provenance

HASH_BLOCK = 1 << 20  # bytes read at a time
PLAYBOOK_FILE = "playbook.yaml"  # the rules a review applies are configuration too
PROVENANCE_VERSION = 1  # bump when what goes into the config hash changes


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes: a renamed copy of a call is the same call."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _model_version(name: str) -> str:
    """Packaged models are identified by their pinned SHA-256; other names stand for themselves."""
    from copilot.models.registry import packaged

    spec = packaged(name)
    if spec is None or not spec.sources:
        return name
    return f"{spec.name}@sha256:{spec.sources[0].sha256[:16]}"


def model_versions(config: Config) -> dict[str, str]:
    return {
        "asr": _model_version(config.asr.model),
        "embedder": _model_version(config.embedder.model),
        "llm": _model_version(config.llm.model),
    }


def _playbook_hash(config: Config) -> str:
    path = Path(config.knowledge_dir) / PLAYBOOK_FILE
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def provenance(config: Config, extra: Mapping[str, Any] | None = None) -> Provenance:
    """The configuration a review runs with, its hash and the model versions.

    Settings that cannot change a review (where the app listens, its login) are left out so that
    changing them does not make every call look unreviewed. ``extra`` adds anything else that shapes
    the result (for example the reviewer's own version).
    """
    settings = dataclasses.asdict(config)
    settings.pop("app", None)
    settings.pop("store", None)
    settings.pop("telephony", None)  # where calls come from (ports, patterns) does not change a review
    settings.pop("knowledge_dir", None)  # where the rules live does not matter, what they say does
    settings["playbook_sha256"] = _playbook_hash(config)
    settings["provenance_version"] = PROVENANCE_VERSION
    settings["package_version"] = _package_version()
    if extra:
        settings["extra"] = dict(extra)
    canonical = json.dumps(settings, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return Provenance(
        config_hash=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        config=json.loads(canonical),
        model_versions=model_versions(config),
    )


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mandarin-service-copilot")
    except PackageNotFoundError:
        return "unknown"
