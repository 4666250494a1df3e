from __future__ import annotations

import pytest

from copilot.suggest.guard import check_rewrite, overlap, promises, unsupported_promises
from copilot.suggest.slots import CallSlots, extract_slots, fill_script, promised_callback
from copilot.types import Segment

SCRIPT = "非常抱歉给您带来不便，我马上为您登记报修，请您保持电话畅通。"
PASSAGE = "对于在保修期内的产品，客服应为用户登记报修，并在两小时内回电确认上门时间。"


def no_rules(_text: str) -> list[str]:
    return []


def test_promises_finds_money_times_and_refund_words() -> None:
    found = promises("我们今天下午三点上门，给您退款两百元，三个工作日内到账。")
    assert "两百元" in found
    assert "退款" in found
    assert any("三个工作日" in p for p in found)
    assert any("三点" in p for p in found)


def test_promise_in_the_handbook_is_supported_but_invented_one_is_not() -> None:
    assert unsupported_promises("我们会在两小时内回电。", [PASSAGE]) == []
    assert unsupported_promises("我们会在24小时内给您退款。", [PASSAGE]) == ["24小时内", "退款"]


def test_faithful_rewrite_is_kept() -> None:
    verdict = check_rewrite(
        "非常抱歉给您带来不便，我这就为您登记报修，请保持电话畅通。",
        script=SCRIPT,
        passages=[PASSAGE],
        call_context=["我的洗衣机不能脱水了"],
        rule_violations=no_rules,
    )
    assert verdict.ok, verdict.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Sorry for the trouble, we will fix it soon.", "not Chinese"),
        ("非常抱歉，我们给您补偿五百元。", "promise"),
        ("天气不错，股票行情也很好，祝您投资顺利。", "strays"),
        ("非常抱歉。" * 3, "too long"),
    ],
)
def test_bad_rewrites_are_replaced_with_a_reason(text: str, reason: str) -> None:
    verdict = check_rewrite(
        text, script=SCRIPT, passages=[PASSAGE], call_context=[], rule_violations=no_rules
    )
    assert not verdict.ok
    assert reason in verdict.reason


def test_rule_violation_blocks_the_rewrite() -> None:
    verdict = check_rewrite(
        "您别激动，我马上为您登记报修。",
        script=SCRIPT,
        passages=[PASSAGE],
        call_context=[],
        rule_violations=lambda text: ["forbidden"] if "别激动" in text else [],
    )
    assert not verdict.ok and "forbidden" in verdict.reason


def test_overlap_is_a_share_of_bigrams() -> None:
    assert overlap("登记报修", ["为您登记报修"]) == 1.0
    assert overlap("天气晴朗", ["为您登记报修"]) == 0.0


def seg(speaker: str, text: str) -> Segment:
    return Segment(speaker=speaker, start=0.0, end=1.0, text=text)  # type: ignore[arg-type]


def test_slots_from_the_customer_and_confirmed_by_the_agent() -> None:
    slots = extract_slots(
        [
            seg("customer", "我家的洗衣机不能脱水了"),
            seg("customer", "我姓王，去年八月份买的"),
            seg("agent", "好的王先生，我帮您查询一下"),
        ]
    )
    assert slots == CallSlots(surname="王", honorific="先生", product="洗衣机")
    assert slots.address == "王先生"


def test_no_gender_guess_without_an_honorific() -> None:
    slots = extract_slots([seg("customer", "免贵姓李，抽油烟机坏了")])
    assert slots.surname == "李" and slots.product == "抽油烟机"
    assert slots.address == "您"


def test_fill_script_uses_slots() -> None:
    slots = CallSlots(surname="王", honorific="先生", product="洗衣机")
    assert (
        fill_script("{address}，关于{product}的问题我来帮您处理。", slots)
        == "王先生，关于洗衣机的问题我来帮您处理。"
    )
    assert "您的洗衣机" in fill_script("请问您的产品购买多久了？", slots)


ASKS = "您的这个问题我需要进一步确认后才能回复您,请您留下您的联系电话,我们会有专人和您联系,好吗?"


@pytest.mark.parametrize(
    ("lines", "known"),
    [
        ([("customer", "15312679799,已经耽误我三天了")], True),  # said in the call
        ([("customer", "幺三八幺二三四五六七八")], True),  # spoken digits, as ASR writes them
        ([("customer", "我的电话是***********")], True),  # the ASR's mask of a number
        ([("agent", "那您保持尾号七幺的电话畅通")], True),  # the agent names the number on file
        ([("customer", "我买了一台洗衣机,三天了还没送到")], False),
        ([("customer", "已经私信,期待答复.186****0660")], True),  # partly masked
        ([("customer", "***四五八七七九幺六")], True),  # a read-back the ASR partly masked
        ([("customer", "订单号我没记下来")], False),
        ([("customer", "订单编号: 130311325245,请补我差价")], False),  # an order number is no phone
        ([("customer", "编译时间 Apr 14 2015 词频 20141224")], False),  # nor a date
    ],
)
def test_a_number_already_in_the_call_is_not_asked_for_again(
    lines: list[tuple[str, str]], known: bool
) -> None:
    slots = extract_slots([seg(speaker, text) for speaker, text in lines])
    assert slots.number_known is known
    filled = fill_script(ASKS, slots)
    if known:
        assert filled == "您的这个问题我需要进一步确认后才能回复您,我们会有专人和您联系,好吗?"
    else:
        assert filled == ASKS


@pytest.mark.parametrize(
    ("agent_lines", "promised"),
    [
        (["我帮您升级处理,专员会在四个小时之内给您回电"], "四个小时之内"),
        (["最晚会在明天中午十三点之前给您回复您看可以吗"], "明天中午十三点之前"),
        (["会在次日的十三点前给到您一个回电"], "次日的十三点前"),
        (["会在天的十三点之前通过座机给您回复"], "十三点之前"),  # ASR lost 明; the 的 goes with it
        (["会在四个小时之内给您回电", "那我一个小时内再联系您好吗"], "一个小时内"),  # the latest promise
        (["但是不保证一定会有人半个小时给您回电"], ""),  # hedged: no promise
        (["我这边帮您如实记录叫骑手半个小时内回电这个诉求"], ""),  # the caller's wish, noted
        (["退款一到三个工作日内退回您的原支付账户"], ""),  # a time, but no callback
        (["稍后专员会给您回电"], ""),  # a callback, but no time
    ],
)
def test_the_callback_the_agent_promised(agent_lines: list[str], promised: str) -> None:
    segments = [seg("customer", "我想问一下这个怎么处理"), *(seg("agent", line) for line in agent_lines)]
    assert promised_callback(segments) == promised
    assert extract_slots(segments).callback == promised
    filled = fill_script("我们会在{callback}给您回电", extract_slots(segments))
    assert filled == (f"我们会在{promised}给您回电" if promised else "我们会在{callback}给您回电")
