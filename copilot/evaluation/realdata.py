"""The real-data development set: dialogues read from ``shared_dir()/realdata``, labels from ``eval/realdata``.

The texts are never copied into the repository; only ``(dialogue id, turn, label)`` rows live there
(``eval/realdata/README.md`` has the labelling rules). Code reads the dialogues when they are present and
says so plainly when they are not. The split into a tuning part and a test part is by dialogue id alone,
so it cannot drift with the labels.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from copilot.config import REPO_DIR, shared_dir
from copilot.errors import ConfigError

LABELS_DIR = REPO_DIR / "eval" / "realdata"
PHONE_CALLS = "musied_phone_dev.jsonl"  # 300 real phone calls (ASR-style text)
HELPDESK = "stc3_helpdesk_dev.jsonl"  # 600 helpdesk dialogues with annotated satisfaction
TEST_SHARE_PERCENT = 40  # of the dialogue ids, by hash: the part nobody tunes on

Split = Literal["tune", "test"]
Role = Literal["agent", "customer", "system"]


def split_of(dialogue_id: str) -> Split:
    """``test`` for about 40 % of the ids (SHA-1 of the id), ``tune`` for the rest."""
    bucket = int(hashlib.sha1(dialogue_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "test" if bucket < TEST_SHARE_PERCENT else "tune"


@dataclass(frozen=True)
class Turn:
    role: Role
    text: str


@dataclass(frozen=True)
class Dialogue:
    id: str
    turns: tuple[Turn, ...]
    satisfaction: float | None = None  # STC3 'S' (mean of annotators, -2..2); None for the phone calls


def realdata_dir() -> Path:
    return shared_dir() / "realdata"


def available() -> bool:
    return (realdata_dir() / PHONE_CALLS).is_file()


@cache
def dialogues(file: str) -> dict[str, Dialogue]:
    """Every dialogue of one realdata file by id; ConfigError (one line) when the data is not there."""
    path = realdata_dir() / file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(
            f"real dialogues not found at {path} ({e.strerror or e}); set COPILOT_SHARED to the shared data folder"
        ) from e
    out: dict[str, Dialogue] = {}
    for line in lines:
        if not line.strip():
            continue
        raw = json.loads(line)
        quality = raw.get("quality_mean") or {}
        out[raw["id"]] = Dialogue(
            id=raw["id"],
            turns=tuple(Turn(t["role"], t["text"]) for t in raw["turns"]),
            satisfaction=float(quality["S"]) if "S" in quality else None,
        )
    return out


def label_rows(name: str, directory: Path = LABELS_DIR) -> Iterator[dict[str, str]]:
    """The rows of one label file (``eval/realdata/NAME``) as dicts keyed by its header."""
    path = directory / name
    try:
        with path.open(encoding="utf-8", newline="") as f:
            yield from csv.DictReader(f, delimiter="\t")
    except OSError as e:
        raise ConfigError(f"labels not found at {path}: {e.strerror or e}") from e
