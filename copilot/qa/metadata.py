"""Agent and call metadata (agent id, team, queue, date) for a recorded call.

QA aggregates per agent and per team, but recordings rarely carry that inside. It comes from, in order
of precedence:

1. a metadata file given with ``--meta`` (CSV with a header, or JSON): rows with a ``file`` column describe
   one call (matched by file name or stem); rows with an ``agent`` but no ``file`` form a roster that
   gives an agent's team;
2. a sidecar next to the call, ``NAME.meta.json`` (one JSON object);
3. the file name, matched against a regex with named groups (``agent``, ``team``, ``queue``, ``date``),
   by default ``20240131_A017_billing_anything.wav`` style names.

A field a source leaves empty falls through to the next source.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError

SIDECAR_SUFFIX = ".meta.json"
FIELDS: tuple[str, ...] = ("agent", "team", "queue", "date")
# DATE_AGENT_QUEUE_rest: 20240131_A017_billing_xyz.wav (date as YYYYMMDD or YYYY-MM-DD).
DEFAULT_NAME_PATTERN = r"^(?P<date>\d{4}-?\d{2}-?\d{2})_(?P<agent>[A-Za-z0-9]+)_(?P<queue>[A-Za-z0-9-]+)"


class MetadataError(CopilotError):
    """A metadata file or pattern cannot be read."""

    exit_code = 2


@dataclass(frozen=True)
class CallMetadata:
    """Who handled a call and where it came from; empty string = unknown."""

    agent: str = ""
    team: str = ""
    queue: str = ""
    date: str = ""  # ISO date YYYY-MM-DD when known

    def merged(self, fallback: CallMetadata) -> CallMetadata:
        """This metadata with its empty fields taken from ``fallback``."""
        return CallMetadata(**{f: getattr(self, f) or getattr(fallback, f) for f in FIELDS})


def _normalise_date(value: str) -> str:
    digits = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", value.strip())
    return f"{digits[1]}-{digits[2]}-{digits[3]}" if digits else value.strip()


def _from_mapping(row: Mapping[str, Any]) -> CallMetadata:
    values = {f: str(row.get(f) or "").strip() for f in FIELDS}
    values["date"] = _normalise_date(values["date"])
    return CallMetadata(**values)


@dataclass(frozen=True)
class MetadataSource:
    """Resolves :class:`CallMetadata` for call files; build it with :func:`load_metadata`."""

    by_file: Mapping[str, CallMetadata] = dataclasses.field(default_factory=dict)
    teams: Mapping[str, str] = dataclasses.field(default_factory=dict)  # roster: agent -> team
    pattern: re.Pattern[str] | None = re.compile(DEFAULT_NAME_PATTERN)

    def for_file(self, path: Path) -> CallMetadata:
        found = self.by_file.get(path.name) or self.by_file.get(path.stem) or CallMetadata()
        found = found.merged(read_sidecar(path))
        if self.pattern is not None:
            match = self.pattern.search(path.name)
            if match:
                found = found.merged(_from_mapping(match.groupdict()))
        if not found.team and found.agent in self.teams:
            found = dataclasses.replace(found, team=self.teams[found.agent])
        return found


def read_sidecar(path: Path) -> CallMetadata:
    """``NAME.meta.json`` beside ``NAME.ext``; a missing sidecar is empty metadata."""
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return CallMetadata()
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MetadataError(f"sidecar {sidecar} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise MetadataError(f"sidecar {sidecar} must hold one JSON object")
    return _from_mapping(data)


def _rows(path: Path) -> Iterable[Mapping[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise MetadataError(f"metadata file not found: {path}") from e
    except UnicodeDecodeError as e:
        raise MetadataError(f"metadata file {path} is not UTF-8") from e
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(text.splitlines()))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise MetadataError(f"metadata file {path} is neither CSV (by suffix) nor valid JSON: {e}") from e
    if isinstance(data, dict):  # {"file name or stem": {...}, ...}
        return [{**value, "file": key} for key, value in data.items() if isinstance(value, dict)]
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return data
    raise MetadataError(f"metadata file {path} must be a JSON object keyed by file, or a list of objects")


def load_metadata(path: str | None = None, pattern: str | None = DEFAULT_NAME_PATTERN) -> MetadataSource:
    """A resolver from an optional ``--meta`` file and file-name regex (``None`` or ``""`` = no pattern)."""
    try:
        compiled = re.compile(pattern) if pattern else None
    except re.error as e:
        raise MetadataError(f"file-name pattern {pattern!r} is not a valid regex: {e}") from e
    by_file: dict[str, CallMetadata] = {}
    teams: dict[str, str] = {}
    for row in _rows(Path(path)) if path else ():
        meta = _from_mapping(row)
        name = str(row.get("file") or "").strip()
        if name:
            by_file[Path(name).name] = meta
        if meta.agent and meta.team:
            teams.setdefault(meta.agent, meta.team)
    return MetadataSource(by_file=by_file, teams=teams, pattern=compiled)
