"""Passages: retrievable chunks of a section, with ids that stay put while the text does."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from copilot.errors import KnowledgeError
from copilot.knowledge.sections import Section
from copilot.types import Passage

SECTION_SEPARATOR = " > "
MAX_PASSAGE_CHARS = 320  # about two e5 sentences' worth; longer lines are split at sentence ends
ALONE_CHARS = 60  # a line at least this long starts its own passage once the current one is this long
MIN_PASSAGE_CHARS = 8  # shorter leftovers (a bare heading) carry no guidance of their own
BARE_HEADING_CHARS = 40  # a lone heading line up to this long is not a passage
ID_CHARS = 12  # hex digits of SHA-1: collisions are negligible for a few thousand passages


@dataclass(frozen=True)
class PassageRecord:
    """A passage as stored in knowledge/passages.jsonl (a superset of :class:`Passage`)."""

    id: str
    source: str
    title: str
    section: str
    text: str

    def passage(self) -> Passage:
        return Passage(id=self.id, source=self.source, section=self.section, text=self.text)


def passage_id(source: str, section: str, text: str) -> str:
    """Derived from document, section path and content: the same clause keeps its id across runs."""
    digest = hashlib.sha1(f"{source}\n{section}\n{text}".encode()).hexdigest()
    return digest[:ID_CHARS]


def _split_long(line: str) -> list[str]:
    if len(line) <= MAX_PASSAGE_CHARS:
        return [line]
    sentences = [s for s in re.split(r"(?<=[。!?;!?;])", line) if s.strip()]
    pieces: list[str] = []
    current = ""
    for sentence in sentences:
        if current and len(current) + len(sentence) > MAX_PASSAGE_CHARS:
            pieces.append(current.strip())
            current = ""
        current += sentence
    if current.strip():
        pieces.append(current.strip())
    return pieces


def chunk_lines(lines: Sequence[str]) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in (piece for whole in lines for piece in _split_long(whole)):
        if current and (
            size + len(line) > MAX_PASSAGE_CHARS or (size >= ALONE_CHARS and len(line) >= ALONE_CHARS)
        ):
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        chunks.append("\n".join(current))
    return [chunk for chunk in chunks if len(chunk) >= MIN_PASSAGE_CHARS]


def build_passages(source: str, title: str, sections: Iterable[Section]) -> list[PassageRecord]:
    records: list[PassageRecord] = []
    seen: set[str] = set()
    for section in sections:
        path = SECTION_SEPARATOR.join(section.path)
        for text in chunk_lines(section.lines):
            bare = len(section.lines) == 1 and section.path and len(text) <= BARE_HEADING_CHARS
            if bare and not re.search("[。!?;]", text):
                continue  # a heading without a body: its children carry it in their section path
            pid = passage_id(source, path, text)
            if pid in seen:
                continue
            seen.add(pid)
            records.append(PassageRecord(pid, source, title, path, text))
    return records


def write_passages(path: Path, records: Sequence[PassageRecord]) -> None:
    lines = [
        json.dumps(
            {"id": r.id, "source": r.source, "title": r.title, "section": r.section, "text": r.text},
            ensure_ascii=False,
        )
        for r in records
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_passages(path: Path) -> list[PassageRecord]:
    if not path.is_file():
        raise KnowledgeError(f"no knowledge base at {path}; run: copilot ingest")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            records.append(
                PassageRecord(
                    data["id"], data["source"], data.get("title", ""), data["section"], data["text"]
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise KnowledgeError(f"{path.name} line {number} is not a valid passage: {e}") from e
    return records
