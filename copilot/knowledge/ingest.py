"""``copilot ingest``: knowledge/raw/* -> passages.jsonl, scripts.yaml, vocabulary.txt, ingest_report.md.

Everything written is plain text meant to be reviewed in a diff. People edit the inputs, never the
outputs: knowledge/raw/ (the handbooks), knowledge/guidelines_custom.md (extra guidance, Markdown
headings), knowledge/scripts_custom.yaml (added or disabled scripts), knowledge/vocabulary_custom.txt
and knowledge/ingest_rules.yaml (extra boilerplate patterns).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from copilot.errors import KnowledgeError
from copilot.knowledge.charlm import default_model
from copilot.knowledge.clean import CleanedDocument, CleanRules, Drop, clean_document
from copilot.knowledge.passages import PassageRecord, build_passages, write_passages
from copilot.knowledge.readers import SUPPORTED_SUFFIXES, read_document
from copilot.knowledge.scripts import WordingFix, extract_scripts, fix_wording, merge_custom, write_scripts
from copilot.knowledge.sections import split_sections
from copilot.knowledge.vocabulary import extract_vocabulary, merge_words, read_word_list, write_word_list
from copilot.types import Script

RAW_DIR = "raw"
PASSAGES_FILE = "passages.jsonl"
SCRIPTS_FILE = "scripts.yaml"
SCRIPTS_CUSTOM_FILE = "scripts_custom.yaml"
GUIDELINES_CUSTOM_FILE = "guidelines_custom.md"
VOCABULARY_FILE = "vocabulary.txt"
VOCABULARY_CUSTOM_FILE = "vocabulary_custom.txt"
RULES_FILE = "ingest_rules.yaml"
REPORT_FILE = "ingest_report.md"
REPORT_EXCERPT_CHARS = 100  # dropped text longer than this is shown cut, with its length


@dataclass(frozen=True)
class DocumentReport:
    source: str
    title: str
    raw_chars: int
    kept_chars: int
    passages: int
    drops: tuple[Drop, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class IngestResult:
    documents: tuple[DocumentReport, ...]
    passages: tuple[PassageRecord, ...]
    scripts: tuple[Script, ...]
    vocabulary: tuple[str, ...]
    report: str


def _string_list(data: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    """A list of ingest_rules.yaml; a bare string would be read character by character (讲师 -> 讲, 师)."""
    value = data.get(key) or []
    if not isinstance(value, list):
        raise KnowledgeError(f"{path}: {key} must be a list (one `- ` item per entry)")
    return tuple(str(item) for item in value)


def load_rules(knowledge_dir: Path) -> CleanRules:
    path = knowledge_dir / RULES_FILE
    base = CleanRules()
    if not path.is_file():
        return base
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        extra_lines = _string_list(data, "drop_lines", path)
        extra_inline = _string_list(data, "drop_inline", path)
        glued = _string_list(data, "glued_headings", path)
        for pattern in (*extra_lines, *extra_inline):
            re.compile(pattern)
    except (yaml.YAMLError, AttributeError, re.error) as e:
        raise KnowledgeError(f"{path} is invalid: {e}") from e
    return CleanRules(base.drop_lines + extra_lines, base.drop_inline + extra_inline, glued)


def load_typo_fixes(knowledge_dir: Path) -> list[tuple[str, str]]:
    """``script_typos`` of ingest_rules.yaml: scraped wordings (正于查询中) and what a script says instead."""
    path = knowledge_dir / RULES_FILE
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise KnowledgeError(f"{path} is invalid: {e}") from e
    fixes = data.get("script_typos") or {}
    if not isinstance(fixes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fixes.items()
    ):
        raise KnowledgeError(f"{path}: script_typos must map a scraped wording to its fix")
    return sorted(fixes.items(), key=lambda pair: -len(pair[0]))  # longer wordings first


def _without_comments(text: str) -> str:
    return re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)


def _documents(knowledge_dir: Path) -> list[tuple[str, str]]:
    raw_dir = knowledge_dir / RAW_DIR
    if not raw_dir.is_dir():
        raise KnowledgeError(f"no handbooks folder at {raw_dir}")
    files = sorted(p for p in raw_dir.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES)
    if not files:
        raise KnowledgeError(f"no handbooks in {raw_dir} ({', '.join(SUPPORTED_SUFFIXES)})")
    documents = [(p.name, read_document(p)) for p in files]
    custom = knowledge_dir / GUIDELINES_CUSTOM_FILE
    if custom.is_file() and _without_comments(custom.read_text(encoding="utf-8")).strip():
        documents.append((custom.name, _without_comments(custom.read_text(encoding="utf-8"))))
    return documents


def _excerpt(text: str) -> str:
    text = text.replace("\n", " ").replace("|", "/")
    if len(text) <= REPORT_EXCERPT_CHARS:
        return text
    return f"{text[:REPORT_EXCERPT_CHARS]}… ({len(text)} chars)"


def render_wording(fixes: Sequence[WordingFix]) -> list[str]:
    """The report's list of scripts said differently from the handbook's quotation (kept for citation)."""
    lines = [
        "",
        f"## Script wording: {len(fixes)} script(s) said differently from the quotation",
        "",
        "Typos of the scrape (`script_typos` in ingest_rules.yaml), stage directions, alternatives and",
        "unfinished clauses; the passages keep the handbook's original text, which is what is cited.",
        "",
        "| script | handbook quotation | said as | changes |",
        "|---|---|---|---|",
    ]
    for fix in fixes:
        changes = "; ".join(fix.changes).replace("|", "/")
        lines.append(f"| {fix.script_id} | {_excerpt(fix.original)} | {_excerpt(fix.said)} | {changes} |")
    return lines


def render_report(documents: Sequence[DocumentReport], wording: Sequence[WordingFix] = ()) -> str:
    lines = [
        "# Ingestion report",
        "",
        "Generated by `copilot ingest`: what was kept and dropped, per document.",
        "",
    ]
    lines.append("| document | raw chars | kept chars | passages | dropped items |")
    lines.append("|---|---:|---:|---:|---:|")
    for doc in documents:
        lines.append(
            f"| {doc.source} | {doc.raw_chars} | {doc.kept_chars} | {doc.passages} | {len(doc.drops)} |"
        )
    for doc in documents:
        lines += ["", f"## {doc.source} — {doc.title}", ""]
        lines.append(f"{doc.raw_chars} raw characters, {doc.kept_chars} kept in {doc.passages} passages.")
        lines += [f"- note: {note}" for note in doc.notes]
        kinds: dict[str, list[Drop]] = {}
        for drop in doc.drops:
            kinds.setdefault(drop.kind, []).append(drop)
        for kind, drops in kinds.items():
            total = sum(len(d.text) for d in drops)
            lines += ["", f"### {kind}: {len(drops)} item(s), {total} chars", ""]
            for drop in drops:
                detail = f" — {drop.detail}" if drop.detail else ""
                lines.append(f"- `{_excerpt(drop.text)}`{detail}")
    if wording:
        lines += render_wording(wording)
    return "\n".join(lines) + "\n"


def ingest(knowledge_dir: Path, *, write: bool = True, log: Callable[[str], None] = print) -> IngestResult:
    """Clean, section and chunk every handbook, extract scripts and vocabulary, write the outputs."""
    rules = load_rules(knowledge_dir)
    model = default_model()
    reports: list[DocumentReport] = []
    passages: list[PassageRecord] = []
    for source, text in _documents(knowledge_dir):
        cleaned: CleanedDocument = clean_document(source, text, rules=rules, model=model)
        records = build_passages(source, cleaned.title, split_sections(cleaned.lines))
        passages.extend(records)
        reports.append(
            DocumentReport(
                source=source,
                title=cleaned.title,
                raw_chars=cleaned.raw_chars,
                kept_chars=sum(len(r.text) for r in records),
                passages=len(records),
                drops=cleaned.drops,
                notes=cleaned.notes,
            )
        )
        log(f"{source}: {len(records)} passages, {len(cleaned.drops)} items dropped")
    spoken, wording = fix_wording(extract_scripts(passages), load_typo_fixes(knowledge_dir))
    scripts = merge_custom(spoken, knowledge_dir / SCRIPTS_CUSTOM_FILE, passages, warn=log)
    vocabulary = merge_words(
        read_word_list(knowledge_dir / VOCABULARY_CUSTOM_FILE),
        extract_vocabulary([r.text for r in passages] + [s.text for s in scripts]),
    )
    report = render_report(reports, wording)
    if write:
        write_passages(knowledge_dir / PASSAGES_FILE, passages)
        write_scripts(knowledge_dir / SCRIPTS_FILE, scripts)
        write_word_list(
            knowledge_dir / VOCABULARY_FILE,
            vocabulary,
            "# Generated by `copilot ingest`; add words to vocabulary_custom.txt instead.\n",
        )
        (knowledge_dir / REPORT_FILE).write_text(report, encoding="utf-8")
    return IngestResult(tuple(reports), tuple(passages), tuple(scripts), tuple(vocabulary), report)
