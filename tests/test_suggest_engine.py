"""The suggestion stream with fakes: script at once, guarded rewrite after, cancellation."""

from __future__ import annotations

import threading

from copilot.config import RetrievalConfig
from copilot.judgement import default_engine
from copilot.knowledge.retrieval import Retriever
from copilot.suggest.engine import Suggester, SuggestOptions, run_to_end
from copilot.types import Passage, Script, Segment
from tests.fakes_embedding import HashEmbedder
from tests.fakes_llm import ScriptedGenerator

PASSAGES = [
    Passage("p-wait", "h1.txt", "应答规范 > 等待", "用户抱怨等待时间太长时，应致歉：非常抱歉让您久等了。"),
    Passage(
        "p-repair",
        "h2.txt",
        "维修 > 保修",
        "产品在保修期内出现故障，可为用户登记免费维修，两小时内回电确认上门时间。",
    ),
    Passage("p-dialect", "h1.txt", "应答规范 > 方言", "遇到用户讲方言无法听懂时，请用户用普通话交流。"),
]
SCRIPTS = [
    Script(
        "s-wait",
        "非常抱歉让您久等了，我马上为您处理。",
        "用户抱怨等待时间太长",
        "complaint_waiting",
        "any",
        passage_id="p-wait",
    ),
    Script(
        "s-repair",
        "您的产品在保修期内，我为您登记免费维修，两小时内回电确认上门时间。",
        "产品故障报修",
        "warranty",
        "resolution",
        passage_id="p-repair",
    ),
    Script(
        "s-dialect", "对不起，麻烦您讲普通话好吗？", "用户讲方言", "dialect", "any", passage_id="p-dialect"
    ),
]


def customer(text: str, start: float = 0.0) -> Segment:
    return Segment(speaker="customer", start=start, end=start + 2.0, text=text)


def suggester(replies: list[str]) -> tuple[Suggester, ScriptedGenerator]:
    generator = ScriptedGenerator(replies)
    retriever = Retriever(PASSAGES, RetrievalConfig(mode="bm25"))
    return (
        Suggester(retriever, SCRIPTS, embedder=HashEmbedder(), generator=generator, rules=default_engine()),
        generator,
    )


def test_script_first_then_kept_rewrite_with_cites() -> None:
    engine, generator = suggester(["非常抱歉让您久等了，我这就为您处理。"])
    stream = list(engine.suggest([customer("我等了半天了，等待时间太长了")]))
    first, last = stream[0], stream[-1]
    assert first.final is False and first.text == "非常抱歉让您久等了，我马上为您处理。"
    assert first.latency_ms.script is not None
    assert any(s.streaming_text for s in stream[1:-1])  # the rewrite streamed in
    assert last.final and not last.fallback and last.text == "非常抱歉让您久等了，我这就为您处理。"
    assert last.cites and last.cites[0].id == "p-wait"
    assert last.latency_ms.first_token is not None and last.latency_ms.done is not None
    prompt = generator.calls[0][-1].content
    assert "等待时间太长" in prompt and "非常抱歉让您久等了" in prompt


def test_rewrite_with_forbidden_phrase_is_cut_and_replaced() -> None:
    engine, _ = suggester(["您别激动，非常抱歉让您久等了。"])
    stream = list(engine.suggest([customer("等待时间太长了，你们怎么回事")]))
    assert all("别激动" not in s.streaming_text for s in stream)  # never shown, not even streaming
    assert stream[-1].fallback and "forbidden" in stream[-1].reason
    assert stream[-1].text == stream[-1].script


def test_invented_refund_is_replaced() -> None:
    engine, _ = suggester(["非常抱歉让您久等了，我们给您退款五百元。"])
    last = run_to_end(engine.suggest([customer("等待时间太长了")]))
    assert last.fallback and "promise" in last.reason


def test_promise_that_the_handbook_makes_is_kept() -> None:
    engine, _ = suggester(["您的机器在保修期内，我为您登记免费维修，两小时内回电确认上门时间。"])
    last = run_to_end(engine.suggest([customer("我家洗衣机坏了，还在保修期内，能免费维修吗")]))
    assert not last.fallback, last.reason


def test_slots_fill_the_script() -> None:
    engine, _ = suggester(["x"])
    choice = engine.choose_script([customer("我是王先生，我的洗衣机坏了，保修期内能维修吗")])
    assert choice.script.id == "s-repair"
    assert "洗衣机" in choice.text


def test_blocked_script_is_never_shown() -> None:
    engine, _ = suggester(["x"])
    blocked = frozenset({"非常抱歉让您久等了，我马上为您处理。"})
    last = run_to_end(
        engine.suggest([customer("等待时间太长了")], options=SuggestOptions(use_llm=False, blocked=blocked))
    )
    assert last.text not in blocked and last.fallback


def test_cancel_stops_generation_and_keeps_the_script() -> None:
    engine, generator = suggester(["非常抱歉让您久等了，我这就为您处理，请您稍等片刻。"])
    stop = threading.Event()
    results = []
    for item in engine.suggest([customer("等待时间太长了")], stop=stop):
        results.append(item)
        if item.streaming_text:
            stop.set()  # a new customer turn arrived
    assert results[-1].reason.startswith("cancelled")
    assert results[-1].text == results[-1].script
    assert generator.pieces_emitted[0] < len("非常抱歉让您久等了，我这就为您处理，请您稍等片刻。")


def test_without_llm_the_script_is_final_at_once() -> None:
    engine, generator = suggester(["unused"])
    stream = list(engine.suggest([customer("讲方言你听得懂吗")], options=SuggestOptions(use_llm=False)))
    assert len(stream) == 1 and stream[0].final and stream[0].fallback
    assert not generator.calls


def test_an_angry_caller_gets_an_apology_script_first() -> None:
    scripts = [
        *SCRIPTS,
        Script("s-angry", "非常抱歉给您造成麻烦，我会尽快帮您解决。", "用户情绪激烈", "angry_caller", "any"),
    ]
    engine = Suggester(Retriever(PASSAGES, RetrievalConfig(mode="bm25")), scripts, embedder=HashEmbedder())
    calm = engine.choose_script([customer("我讲方言，你听得懂吗")])
    angry = engine.choose_script([customer("我讲方言你就听不懂？什么态度！气死我了！")])
    assert calm.script.id == "s-dialect"
    assert angry.script.situation_key in {"angry_caller", "complaint_waiting"}


def test_the_configured_token_budget_caps_the_rewrite_unless_a_call_asks_for_its_own() -> None:
    reply = "非常抱歉让您久等了，我这就为您处理。"
    generator = ScriptedGenerator([reply])
    retriever = Retriever(PASSAGES, RetrievalConfig(mode="bm25"))
    engine = Suggester(
        retriever,
        SCRIPTS,
        embedder=HashEmbedder(),
        generator=generator,
        rules=default_engine(),
        max_new_tokens=5,
    )
    list(engine.suggest([customer("我等了半天了，等待时间太长了")]))
    list(engine.suggest([customer("我等了半天了，等待时间太长了")], options=SuggestOptions(max_new_tokens=8)))
    assert generator.pieces_emitted == [5, 8]
