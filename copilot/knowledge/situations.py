"""The situation layer: call moments the handbooks cover, each with typical phrasings and its clauses.

``knowledge/situations.yaml`` is written and edited by people (trainers). Each situation names the
handbook clauses that answer it by quotes of their text, not by passage ids: a quote survives a
re-ingestion that changes ids. Retrieval (:mod:`copilot.knowledge.retrieval`) compares a live query with the
phrasings and ranks the clauses of the closest situations beside the passages' own rankings.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from copilot.errors import KnowledgeError
from copilot.types import Passage

SITUATIONS_FILE = "situations.yaml"
FIELDS = frozenset({"key", "title", "clauses", "examples", "paraphrases", "special", "says", "cues"})


@dataclass(frozen=True)
class Situation:
    """One call moment: how it is named, where the guidance is, and how callers bring it up."""

    key: str  # stable name, e.g. wrong_number (the situation_key of scripts.yaml where one exists)
    title: str  # the moment in the handbooks' own terms
    clauses: tuple[str, ...]  # quotes of the passages (section path or text) holding the guidance
    examples: tuple[str, ...]  # typical phrasings of a caller or an agent
    # More ways of saying it, for the lexical ranking only: the matcher (dense, calibrated on real turns)
    # and so the script a turn gets rest on ``examples`` alone.
    paraphrases: tuple[str, ...] = ()
    # A special situation (wrong number, can't hear, greeting, farewell...) has scripts that are wrong on
    # any other turn: they are offered only when the matcher is confident the turn is this situation.
    special: bool = False
    says: tuple[str, ...] = ()  # quotes of the scripts (scripts.yaml text) that answer this situation
    cues: str = (
        ""  # a regular expression of words that say the turn is this situation (the matcher's lexical half)
    )


@dataclass(frozen=True)
class SituationLinks:
    """Situations resolved against one passage table."""

    passages: tuple[tuple[int, ...], ...]  # per situation: rows of the passage table it links to
    unresolved: tuple[str, ...]  # "key: quote" for every quote that matches no passage


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise KnowledgeError(f"{where} must be a non-empty list of strings")
    items = tuple(str(item).strip() for item in value if item is not None)
    if any(not item for item in items) or len(items) != len(value):
        raise KnowledgeError(f"{where} has an empty entry")
    return items


def parse_situations(data: object, origin: str = SITUATIONS_FILE) -> list[Situation]:
    """Validate the YAML document of a situations file (a list of mappings)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise KnowledgeError(f"{origin} must be a list of situations")
    situations: list[Situation] = []
    seen: set[str] = set()
    for number, item in enumerate(data, 1):
        where = f"{origin} item {number}"
        if not isinstance(item, dict):
            raise KnowledgeError(f"{where} must be a mapping with key, title, clauses, examples")
        unknown = set(item) - FIELDS
        if unknown:
            raise KnowledgeError(f"{where} has unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        key = str(item.get("key") or "").strip()
        if not key:
            raise KnowledgeError(f"{where} needs a key")
        if key in seen:
            raise KnowledgeError(f"{where}: key {key!r} is used twice")
        seen.add(key)
        title = str(item.get("title") or "").strip()
        if not title:
            raise KnowledgeError(f"{where} ({key}) needs a title")
        special = item.get("special", False)
        if not isinstance(special, bool):
            raise KnowledgeError(f"{where} ({key}) special must be true or false")
        says = item.get("says")
        paraphrases = item.get("paraphrases")
        cues = str(item.get("cues") or "")
        try:
            re.compile(cues)
        except re.error as e:
            raise KnowledgeError(f"{where} ({key}) cues is not a regular expression: {e}") from e
        situations.append(
            Situation(
                key=key,
                title=title,
                clauses=_strings(item.get("clauses"), f"{where} ({key}) clauses"),
                examples=_strings(item.get("examples"), f"{where} ({key}) examples"),
                paraphrases=_strings(paraphrases, f"{where} ({key}) paraphrases")
                if paraphrases is not None
                else (),
                special=special,
                says=_strings(says, f"{where} ({key}) says") if says is not None else (),
                cues=cues,
            )
        )
    return situations


def read_situations(path: Path) -> list[Situation]:
    """The situations of a file; a missing file means no situation layer (retrieval still works)."""
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise KnowledgeError(f"cannot read {path}: {e}") from e
    return parse_situations(data, path.name)


def load_situations(directory: Path) -> list[Situation]:
    return read_situations(directory / SITUATIONS_FILE)


def situations_hash(situations: Sequence[Situation]) -> str:
    """Changes whenever anything the index embeds or links changes (not the paraphrases: the in-memory
    lexical ranking alone reads them, so editing them needs no new index)."""
    fields = [{k: v for k, v in asdict(s).items() if k != "paraphrases"} for s in situations]
    canonical = json.dumps(fields, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def link_situations(
    situations: Sequence[Situation], passages: Sequence[Passage], searchable: Sequence[str]
) -> SituationLinks:
    """Rows of ``passages`` each situation's quotes occur in (``searchable[i]`` is passage i's text)."""
    if len(searchable) != len(passages):
        raise ValueError("one searchable text per passage")
    linked: list[tuple[int, ...]] = []
    unresolved: list[str] = []
    for situation in situations:
        rows: set[int] = set()
        for quote in situation.clauses:
            found = {i for i, text in enumerate(searchable) if quote in text}
            if not found:
                unresolved.append(f"{situation.key}: {quote}")
            rows |= found
        linked.append(tuple(sorted(rows)))
    return SituationLinks(tuple(linked), tuple(unresolved))
