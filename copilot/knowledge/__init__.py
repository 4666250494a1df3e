"""The knowledge base: handbooks in knowledge/raw/ turned into reviewable passages and scripts.

Stage 2, the handbooks: ingest, passages and scripts, embeddings (``embedding``), the situations
layer (``situations``), the query for a moment (``query``) and hybrid retrieval (``retrieval``).
May import: ``copilot.config``, ``copilot.errors``, ``copilot.types``, ``copilot.models``.


Public API: :func:`ingest` (build), :func:`load_passages`, :func:`load_scripts`,
:func:`domain_vocabulary` (hotwords for ASR), :func:`knowledge_dir`.
"""

from __future__ import annotations

from pathlib import Path

from copilot.config import Config
from copilot.knowledge.ingest import (
    PASSAGES_FILE,
    SCRIPTS_FILE,
    VOCABULARY_CUSTOM_FILE,
    VOCABULARY_FILE,
    IngestResult,
    ingest,
)
from copilot.knowledge.passages import read_passages
from copilot.knowledge.scripts import read_scripts
from copilot.knowledge.vocabulary import merge_words, read_word_list
from copilot.types import Passage, Script

__all__ = [
    "IngestResult",
    "domain_vocabulary",
    "ingest",
    "knowledge_dir",
    "load_passages",
    "load_scripts",
]


def knowledge_dir(config: Config | None = None) -> Path:
    return Path(config.knowledge_dir if config is not None else Config().knowledge_dir)


def load_passages(directory: Path | None = None) -> list[Passage]:
    """The passage table (knowledge/passages.jsonl), in file order."""
    return [r.passage() for r in read_passages((directory or knowledge_dir()) / PASSAGES_FILE)]


def load_scripts(directory: Path | None = None) -> list[Script]:
    """The merged script library (knowledge/scripts.yaml: handbook + custom)."""
    return read_scripts((directory or knowledge_dir()) / SCRIPTS_FILE)


def domain_vocabulary(directory: Path | None = None) -> list[str]:
    """Domain words (products, service terms) for ASR hotwords: custom words first, then handbook keywords."""
    base = directory or knowledge_dir()
    return merge_words(read_word_list(base / VOCABULARY_CUSTOM_FILE), read_word_list(base / VOCABULARY_FILE))
