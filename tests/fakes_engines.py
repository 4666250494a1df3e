"""The engines a call session needs, without real models: BM25 retrieval, the default rules, a scripted LLM."""

from __future__ import annotations

from dataclasses import dataclass

from copilot.config import RetrievalConfig
from copilot.judgement import RuleEngine, default_engine
from copilot.knowledge import load_passages, load_scripts
from copilot.knowledge.retrieval import Retriever
from copilot.suggest.engine import Suggester
from tests.fakes_llm import ScriptedGenerator


@dataclass
class FakeEngines:
    suggester: Suggester
    rules: RuleEngine


def fake_engines(reply: str | None = None) -> FakeEngines:
    """Engines over the shipped knowledge; ``reply``: what the scripted LLM rewrites every turn to (None: no LLM)."""
    retriever = Retriever(load_passages(), RetrievalConfig(mode="bm25"))
    rules = default_engine()
    generator = ScriptedGenerator([reply]) if reply is not None else None
    return FakeEngines(Suggester(retriever, load_scripts(), generator=generator, rules=rules), rules)
