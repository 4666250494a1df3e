"""The rules engine on the shared calls and on scripted segments (no models)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from copilot.judgement import RuleEngine, default_engine, load_playbook
from copilot.judgement.playbook import PhrasesParams, SemanticSpec
from copilot.transcription.transcript_files import read_transcript
from copilot.types import Segment, Transcript
from tests.fakes_embedding import HashEmbedder

CHECK_IDS = [
    "greeting",
    "recap",
    "hold",
    "apology",
    "closing",
    "outcome",
    "forbidden",
    "speech_rate",
    "interruption",
    "silence",
]


def agent(start: float, end: float, text: str) -> Segment:
    return Segment("agent", start, end, text)


def customer(start: float, end: float, text: str) -> Segment:
    return Segment("customer", start, end, text)


def call(*segments: Segment) -> Transcript:
    return Transcript("t", max(s.end for s in segments), tuple(segments))


def results(transcript: Transcript) -> dict[str, bool]:
    return {r.id: r.passed for r in default_engine().check_call(transcript)}


def test_good_call_passes_every_check(shared_dir: Path) -> None:
    transcript = read_transcript(shared_dir / "calls" / "good_call.json")
    checks = default_engine().check_call(transcript)
    assert [c.id for c in checks] == CHECK_IDS
    assert not any(c.failed for c in checks), [c.id for c in checks if c.failed]
    # the customer is calm: an apology was never owed, so that check cannot tell (it neither passes nor fails)
    assert {c.id: c.status for c in checks}["apology"] == "unknown"
    assert all(c.passed for c in checks if c.id != "apology")
    assert default_engine().score(checks) == 100.0
    assert default_engine().call_flags(transcript) == []


def test_bad_call_fails_the_expected_checks(shared_dir: Path) -> None:
    transcript = read_transcript(shared_dir / "calls" / "bad_call.json")
    passed = results(transcript)
    for check in ("greeting", "forbidden", "apology", "closing", "interruption"):
        assert not passed[check], check
    assert passed["silence"] and passed["hold"] and passed["speech_rate"]
    failed = [c for c in default_engine().check_call(transcript) if not c.passed]
    assert all(c.evidence or c.id == "recap" for c in failed)
    assert all(c.clause.quote for c in failed)
    assert default_engine().score(default_engine().check_call(transcript)) < 50


@pytest.mark.parametrize(
    "text",
    [
        "这个不行，我们没办法。",
        "喂，什么事？",
        "您别激动，这没什么大不了的。",
        "你怎么用也不会？",
        "这个不归我管，你自己去找厂家吧。",
        "随便你。",
        "您错了，这个功能本来就没有。",
        # the customer sent to the merchant themselves, in the forms real agents use
        "辛苦您这边再跟那边商家沟通一下。",
        "您可以先给店家那边打个电话问问。",
        "这个您再找找他就可以了。",
        "建议咱们就是自己联系一下店家。",
        "我给您提供一个商家电话，您联系一下商家协商一下可以吗？",
        "给您说让您这边自行联系商家也是我们给您的最优方案了。",
    ],
)
def test_forbidden_phrases_flag_with_clause(text: str) -> None:
    flags = default_engine().check_utterance(agent(0, 0, text))
    assert flags and all(f.rule == "forbidden" for f in flags)
    assert all(f.clause.document and f.clause.quote and f.evidence[0].text == text for f in flags)


@pytest.mark.parametrize(
    "text",
    [
        "不可能让您白跑一趟。",
        "如果这个方案不行的话，我们还可以给您换货。",
        "您看明天上午行不行？",
        "目前暂时没办法直接退款，但我可以帮您申请换货。",
        "您提到宠物喂食器也坏了，对吗？",
        # the agent does the contacting; the customer is the one contacted; asking what already happened
        "辛苦您稍等一下，我去联系商家。",
        "店家稍后会和您这边自行联系确认。",
        "您之前给他打过电话了是吧？",
        "您先消消气，这个问题交给我来处理。",
        "我相信您也不可能故意弄坏的。",
        "全部退是不可能的，那这样，我先帮您申请部分退款。",
        # owning the shortcoming while soothing; restating that nobody knows what the object is
        "您先消消气，这证明我们的服务还有很多有待提升的地方，我们真心希望能帮您解决。",
        "您跟商家反馈了，这也不知道是什么东西，是吗？",
        "好的，这边帮您联系一下商家。",
        "商家表示稍后会和您这边就进行一个自行联系。",
    ],
)
def test_context_exceptions_are_not_violations(text: str) -> None:
    assert default_engine().check_utterance(agent(0, 0, text)) == []


def test_customer_lines_are_not_checked_for_agent_phrasing() -> None:
    assert default_engine().check_utterance(customer(0, 1, "这个不行，你们怎么搞的！")) == []


def test_interruption_threshold_is_configurable() -> None:
    history = [customer(0.0, 4.0, "我家洗衣机不脱水，面板一直闪灯，昨天还能用")]
    late = agent(3.7, 4.7, "好的我明白了")  # 0.3 s overlap: under 0.5 s
    early = agent(3.0, 4.0, "好的我明白了")  # 1.0 s overlap
    engine = default_engine()
    assert [f.rule for f in engine.check_utterance(late, history)] == []
    assert [f.rule for f in engine.check_utterance(early, history)] == ["interruption"]
    playbook = load_playbook()
    strict_checks = tuple(
        dataclasses.replace(c, params=dataclasses.replace(c.params, min_overlap_s=0.2))  # type: ignore[call-arg]
        if c.id == "interruption"
        else c
        for c in playbook.checks
    )
    strict = RuleEngine(dataclasses.replace(playbook, checks=strict_checks))
    assert [f.rule for f in strict.check_utterance(late, history)] == ["interruption"]


def test_speech_rate_live_and_per_call() -> None:
    fast = agent(0.0, 4.0, "您好这边帮您查询一下您的机器目前还在保修期内可以免费上门维修请您放心")  # ~500 cpm
    flags = default_engine().check_utterance(fast)
    assert [f.rule for f in flags] == ["speech_rate"] and "太快" in flags[0].message
    assert default_engine().check_utterance(dataclasses.replace(fast, end=10.0)) == []  # 200 cpm
    assert not results(call(fast))["speech_rate"]


def test_dead_air_fails_silence_and_hold_but_an_announced_hold_does_not() -> None:
    greeting = agent(0.0, 5.0, "您好，欢迎致电美家售后，我是小李，请问有什么可以帮您？")
    ask = customer(5.5, 8.0, "我的冰箱不制冷了。")
    silent = call(greeting, ask, agent(15.0, 18.0, "您的冰箱在保修期内。"))
    assert results(silent) == {**results(silent), "silence": False, "hold": False}
    announced = call(
        greeting,
        ask,
        agent(8.5, 10.0, "我帮您查询一下，请您稍等。"),
        agent(20.0, 24.0, "非常感谢您的耐心等候，您的冰箱在保修期内。"),
    )
    assert results(announced)["silence"] and results(announced)["hold"]
    unthanked = call(greeting, ask, agent(8.5, 10.0, "请您稍等。"), agent(20.0, 24.0, "您的冰箱在保修期内。"))
    assert results(unthanked)["silence"] and not results(unthanked)["hold"]
    long_hold = call(
        greeting, ask, agent(8.5, 10.0, "请您稍等。"), agent(50.0, 54.0, "非常感谢您的耐心等候，已经查到了。")
    )
    assert not results(long_hold)["hold"]  # a 40 s hold needs 不要挂线 first


def test_apology_must_follow_anger_within_two_agent_turns() -> None:
    angry = customer(0.0, 3.0, "你们这是什么服务，我要投诉！")
    # Turns, not recogniser segments: the customer answers between the agent's turns.
    late = call(
        angry,
        agent(3.5, 5.0, "请问您的订单号是多少？"),
        customer(5.5, 6.5, "一二三四五。"),
        agent(7.0, 8.0, "请问购买日期是哪天？"),
        customer(8.5, 9.5, "上个月。"),
        agent(10.0, 11.0, "非常抱歉给您带来不便。"),
    )
    timely = call(
        angry, agent(3.5, 5.0, "请问您的订单号是多少？"), agent(6.0, 8.0, "我非常理解您的心情，非常抱歉。")
    )
    assert not results(late)["apology"]
    assert results(timely)["apology"]
    flags = default_engine().call_flags(late)
    assert [f.rule for f in flags if f.rule == "apology"] == ["apology"]


def test_missing_steps_during_a_call() -> None:
    engine = default_engine()
    so_far = [agent(0.0, 5.0, "您好，欢迎致电美家售后，我是小李，请问有什么可以帮您？")]
    assert engine.missing_steps(so_far) == ["recap", "closing"]
    so_far += [customer(5.5, 8.0, "东西全坏了，太过分了！")]
    assert "apology" in engine.missing_steps(so_far)
    so_far += [agent(8.5, 12.0, "非常抱歉。您的意思是冰箱不制冷，东西坏了，对吗？")]
    assert engine.missing_steps(so_far) == ["closing"]
    so_far += [agent(13.0, 16.0, "请问还有其他可以帮您的吗？感谢您的来电，再见！")]
    assert engine.missing_steps(so_far) == []


def test_score_uses_playbook_weights() -> None:
    engine = default_engine()
    checks = engine.check_call(call(agent(0.0, 1.0, "喂")))
    weights = {c.id: c.weight for c in engine.playbook.checks}
    assert any(c.status == "unknown" for c in checks)  # no upset customer: the apology was never owed
    # the share of the decided checks' weight that passed; an undecidable check counts on neither side
    decided = [c for c in checks if c.status != "unknown"]
    assert any(c.failed for c in decided) and any(c.passed for c in decided)
    expected = 100 * sum(weights[c.id] for c in decided if c.passed) / sum(weights[c.id] for c in decided)
    assert engine.score(checks) == pytest.approx(expected, abs=0.05)
    undecided = next(c for c in checks if c.status == "unknown")
    assert engine.score([c for c in checks if c is not undecided]) == engine.score(checks)
    flags = engine.check_utterance(agent(0.0, 1.0, "您别激动"))
    penalty = sum(engine.playbook.flag_penalties[f.severity] for f in flags)
    assert penalty > 0 and engine.score(checks, flags) == pytest.approx(
        max(0.0, expected - penalty), abs=0.05
    )


def test_semantic_operator_is_optional_and_uses_the_embedder() -> None:
    playbook = load_playbook()
    spec = SemanticSpec("semantic_rude", 0.6, ("你到底会不会用这个洗衣机",))
    checks = tuple(
        dataclasses.replace(c, params=dataclasses.replace(c.params, semantic=spec))
        if isinstance(c.params, PhrasesParams)
        else c
        for c in playbook.checks
    )
    playbook = dataclasses.replace(playbook, checks=checks)
    line = agent(0.0, 0.0, "你到底会不会用这个洗衣机啊")  # no listed phrase
    assert RuleEngine(playbook).check_utterance(line) == []
    embedder = HashEmbedder()
    flags = RuleEngine(playbook, embedder=embedder).check_utterance(line)
    assert [f.kind for f in flags] == ["semantic_rude"] and embedder.calls
    assert RuleEngine(playbook, embedder=embedder).check_utterance(agent(0, 0, "请问还有其他问题吗")) == []


def test_whole_call_checks_read_turns_not_recogniser_segments() -> None:
    """A recogniser cuts the greeting at every comma; it is still one greeting turn."""
    pieces = call(
        agent(0.8, 1.6, "您好，"),
        agent(2.1, 4.9, "欢迎致电美家电器售后服务中心。"),
        agent(5.4, 6.9, "我是客服小李。"),
        agent(7.3, 9.6, "请问有什么可以帮您？"),
    )
    assert results(pieces)["greeting"]
    split_by_customer = call(
        agent(0.8, 1.6, "您好，"),
        customer(1.8, 3.0, "喂？"),
        agent(3.5, 6.0, "我是客服小李，这里是售后服务中心。"),
    )
    assert not results(split_by_customer)["greeting"]  # the first turn alone must greet fully


def test_no_way_right_after_the_agent_gave_the_reason_is_an_explanation_live_and_in_review() -> None:
    asked = customer(0.0, 3.0, "请问平台能直接给我退款吗？")
    reason = agent(3.5, 8.0, "因为这笔钱已经结算给商家了，商家不同意的情况下我们不能强行判定。")
    bare_after_reason = agent(8.5, 9.5, "这个是没有办法的。")
    unrelated = agent(3.5, 8.0, "嗯，我这边看到您的订单了。")
    engine = default_engine()
    live_explained = engine.check_utterance(bare_after_reason, [asked, reason])
    live_bare = engine.check_utterance(bare_after_reason, [asked, unrelated])
    assert [f.kind for f in live_explained if f.rule == "forbidden"] == []
    assert [f.kind for f in live_bare if f.rule == "forbidden"] == ["negative_phrase"]
    forbidden = {r.id: r for r in engine.check_call(call(asked, reason, bare_after_reason))}["forbidden"]
    assert forbidden.passed
    forbidden = {r.id: r for r in engine.check_call(call(asked, unrelated, bare_after_reason))}["forbidden"]
    assert forbidden.failed


def test_a_bare_refusal_answered_in_the_next_turn_is_withdrawn_from_the_review() -> None:
    asked = customer(0.0, 3.5, "能不能直接给我退款？")
    bare = agent(4.0, 5.0, "这个确实没办法。")
    again = customer(5.5, 7.0, "那怎么办？")
    offered = agent(7.5, 10.0, "我可以帮您申请一个补偿，您看行吗？")
    nothing = agent(7.5, 10.0, "嗯。")
    engine = default_engine()
    # live, the next turn is not known yet: the bare refusal is flagged as it is said
    assert [f.kind for f in engine.check_utterance(bare, [asked])] == ["negative_phrase"]
    assert engine.call_flags(call(asked, bare, again, offered)) == []
    assert [f.kind for f in engine.call_flags(call(asked, bare, again, nothing))] == ["negative_phrase"]
    forbidden = {r.id: r for r in engine.check_call(call(asked, bare, again, offered))}["forbidden"]
    assert forbidden.passed
    forbidden = {r.id: r for r in engine.check_call(call(asked, bare, again, nothing))}["forbidden"]
    assert forbidden.failed and forbidden.evidence[0].text == bare.text


@pytest.mark.parametrize(
    ("line", "passed"),
    [
        ("那我这边给您申请退一半的餐费，您看可以吗？", True),  # the agreed solution, confirmed
        ("您是说洗衣机不脱水了，对吗？", True),
        ("您看可以吗？", False),  # nothing restated
        ("好的，我知道了。", False),
    ],
)
def test_recap_is_a_restated_matter_or_a_confirmed_solution(line: str, passed: bool) -> None:
    transcript = call(customer(0.0, 3.0, "洗衣机不脱水了，我要退款。"), agent(3.5, 7.0, line))
    assert results(transcript)["recap"] is passed
