"""Fast engines for the app's tests: BM25 retrieval over the real handbooks, the real rules, a scripted LLM.

Only the models are fakes (the LLM is scripted, the transcriber answers from a script); retrieval, the
suggestion guard, the rules and the store are the real ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.config import Config, RetrievalConfig
from copilot.judgement import RuleEngine, default_engine
from copilot.knowledge import load_passages, load_scripts
from copilot.knowledge.retrieval import Retriever
from copilot.qa.store import Store
from copilot.suggest.engine import Suggester
from copilot.suggest.llm import ChatMessage
from copilot.ui.context import AppContext
from tests.fakes_llm import ScriptedGenerator

BM25 = RetrievalConfig(mode="bm25")


@dataclass
class FakeServices:
    """What :class:`copilot.session.engines.Services` offers the app, without loading a model."""

    suggester: Suggester
    rules: RuleEngine
    transcriber: Any = None
    embedder: Any = None
    config: Config = field(default_factory=lambda: app_config())

    @property
    def live_transcriber(self) -> Any:
        return self.transcriber  # one fake serves live and offline alike


class FailingGenerator:
    """An LLM that breaks after its first piece: a failed suggestion must not stop the call."""

    name = "failing"

    def stream(
        self, messages: Sequence[ChatMessage], *, max_new_tokens: int, stop: Any = None
    ) -> Iterator[str]:
        yield "好的"
        raise RuntimeError("the model crashed")


class EchoGenerator:
    """An LLM that answers with the handbook script it was given, prefixed with a polite "好的，"."""

    name = "echo"

    def stream(
        self, messages: Sequence[ChatMessage], *, max_new_tokens: int, stop: Any = None
    ) -> Iterator[str]:
        found = re.search(r"标准话术：(.*)", messages[-1].content)
        yield from ("好的，" + (found.group(1).strip() if found else ""))[:max_new_tokens]


@dataclass
class Engines:
    generator: Any = field(default_factory=lambda: ScriptedGenerator(["好的，我马上为您处理。"]))
    transcriber: Any = None

    def services(self) -> FakeServices:
        rules = default_engine()
        retriever = Retriever(load_passages(), BM25)
        suggester = Suggester(retriever, load_scripts(), generator=self.generator, rules=rules)
        return FakeServices(suggester, rules, self.transcriber)


def app_config(**app: Any) -> Config:
    import dataclasses

    config = Config(retrieval=BM25)
    if app:
        config = dataclasses.replace(config, app=dataclasses.replace(config.app, **app))
    return config


def context(tmp_path: Path, services: FakeServices, **app: Any) -> AppContext:
    store = Store.open(f"sqlite:///{tmp_path / 'copilot.db'}")
    return AppContext(app_config(**app), services, store)  # type: ignore[arg-type]
