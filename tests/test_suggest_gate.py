"""The LLM gate: how many rewrites run at once across calls, and what a call shows when its turn never comes."""

from __future__ import annotations

import threading

import pytest

from copilot.config import AppConfig, Config, validate
from copilot.errors import ConfigError
from copilot.judgement import default_engine
from copilot.knowledge.retrieval import Retriever
from copilot.suggest.engine import BUSY_REASON, Suggester
from copilot.suggest.gate import GenerationGate
from tests.fakes_embedding import HashEmbedder
from tests.fakes_llm import ScriptedGenerator
from tests.test_suggest_engine import PASSAGES, SCRIPTS, customer

REWRITE = "非常抱歉让您久等了，我这就为您处理。"


def gated(gate: GenerationGate) -> tuple[Suggester, ScriptedGenerator]:
    from copilot.config import RetrievalConfig

    generator = ScriptedGenerator([REWRITE])
    retriever = Retriever(PASSAGES, RetrievalConfig(mode="bm25"))
    engine = Suggester(
        retriever, SCRIPTS, embedder=HashEmbedder(), generator=generator, rules=default_engine(), gate=gate
    )
    return engine, generator


def test_the_gate_admits_up_to_its_limit_and_frees_places_on_leave() -> None:
    gate = GenerationGate(limit=2, wait_seconds=0.0)
    first, second = gate.enter(), gate.enter()
    assert first is not None and second is not None
    assert gate.enter() is None  # full, and no waiting
    gate.leave(first)
    assert gate.enter() is not None


def test_a_waiting_request_gets_a_place_that_frees_within_its_wait() -> None:
    gate = GenerationGate(limit=1, wait_seconds=5.0)
    held = gate.enter()
    assert held is not None
    threading.Timer(0.2, gate.leave, args=(held,)).start()
    assert gate.enter() is not None  # the place freed up while it waited


def test_a_cancelled_request_stops_waiting_at_once() -> None:
    gate = GenerationGate(limit=1, wait_seconds=30.0)
    held = gate.enter()
    assert held is not None
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    assert gate.enter(cancel) is None
    gate.leave(held)
    assert gate.enter() is not None, "a refused request must not have taken the place"


def test_waiting_behind_a_cancelled_generation_does_not_use_up_the_wait() -> None:
    gate = GenerationGate(limit=1, wait_seconds=0.1)
    previous_turn = threading.Event()
    assert gate.enter(previous_turn) is previous_turn
    previous_turn.set()  # the call's next customer turn cancelled it; its model step is still finishing
    threading.Timer(0.5, gate.leave, args=(previous_turn,)).start()  # five times the wait
    assert gate.enter(threading.Event()) is not None


def test_behind_a_running_generation_a_request_gives_up_after_its_wait() -> None:
    gate = GenerationGate(limit=1, wait_seconds=0.1)
    other_call = gate.enter(threading.Event())  # not cancelled: it may run for seconds
    assert other_call is not None
    threading.Timer(0.5, gate.leave, args=(other_call,)).start()
    assert gate.enter() is None


def test_while_another_call_generates_the_script_stands_with_the_reason() -> None:
    gate = GenerationGate(limit=1, wait_seconds=0.2)
    engine, generator = gated(gate)
    held = gate.enter()  # another call's rewrite is running
    assert held is not None
    stream = list(engine.suggest([customer("我等了半天了，等待时间太长了")]))
    last = stream[-1]
    assert last.final and last.fallback and last.reason == BUSY_REASON
    assert last.text == last.script and last.cites  # the script and its clause are still shown
    assert last.latency_ms.first_token is None and last.latency_ms.done is not None
    assert generator.calls == []  # the model was never asked
    gate.leave(held)
    kept = list(engine.suggest([customer("我等了半天了，等待时间太长了")]))[-1]
    assert not kept.fallback and kept.text == REWRITE


def test_every_rewrite_gives_its_place_back_kept_cancelled_or_abandoned() -> None:
    gate = GenerationGate(limit=1, wait_seconds=0.0)
    engine, _ = gated(gate)
    list(engine.suggest([customer("等待时间太长了")]))  # kept
    stop = threading.Event()
    for item in engine.suggest([customer("等待时间太长了")], stop=stop):
        if item.streaming_text:
            stop.set()  # cancelled mid-stream
    stream = engine.suggest([customer("等待时间太长了")])
    next(stream), next(stream)
    stream.close()  # the panel dropped it mid-stream
    assert gate.enter() is not None, "the place must be free again"


def test_the_shipped_gate_runs_one_rewrite_at_a_time_and_refuses_nonsense() -> None:
    app = AppConfig()
    assert app.llm_at_once == 1 and 0 < app.llm_wait_seconds <= 2
    with pytest.raises(ConfigError, match="llm_at_once"):
        validate(Config(app=AppConfig(llm_at_once=0)))
    with pytest.raises(ConfigError, match="llm_wait_seconds"):
        validate(Config(app=AppConfig(llm_wait_seconds=-1)))


def test_the_warm_up_token_never_holds_a_place_a_call_could_need() -> None:
    gate = GenerationGate(limit=1, wait_seconds=0.0)
    engine, generator = gated(gate)
    held = gate.enter()  # a call's rewrite is running while the app still warms up
    assert held is not None
    engine.warm()  # neither waits for the place nor takes it
    assert len(generator.calls) == 1  # it still paid the model's first-use costs
    gate.leave(held)
    assert gate.enter() is not None
