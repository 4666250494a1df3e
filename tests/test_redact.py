"""PII redaction: examples from spoken calls, and properties over generated numbers."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.transcription.redact import MASKS, find_pii, redact

SPOKEN = {
    "0": "零",
    "1": "幺",
    "2": "二",
    "3": "三",
    "4": "四",
    "5": "五",
    "6": "六",
    "7": "七",
    "8": "八",
    "9": "九",
}


def test_mobile_written_and_spoken_forms_are_masked() -> None:
    for text in (
        "我的电话是13812345678。",
        "138-1234-5678",
        "138 1234 5678",
        "+86 138 1234 5678",
        "幺三八幺二三四五六七八",
        "一三八 一二三四 五六七八",
        "138 幺二三四 5678",
    ):
        out = redact(text)
        assert MASKS["mobile"] in out, text
        assert "5678" not in out and "五六七八" not in out


def test_other_kinds() -> None:
    assert redact("身份证11010519491231002X") == "身份证" + MASKS["id_card"]
    assert redact("卡号6222 0212 3456 7890 123") == "卡号" + MASKS["bank_card"]
    assert redact("发到zhang.san@example.com吧") == "发到" + MASKS["email"] + "吧"
    assert redact("座机010-87654321") == "座机" + MASKS["landline"]
    assert [s.kind for s in find_pii("13812345678，13987654321")] == ["mobile", "mobile"]


def test_a_mobile_read_straight_into_a_card_number_masks_both() -> None:
    # One run of 30 digits is too long for any one number: the mobile at either end is split off, then
    # the rest is a card number of its own.
    assert redact("我的号码是138123456786222021234567890123") == "我的号码是[手机号][银行卡号]"
    assert redact("卡号622202123456789012313812345678") == "卡号[银行卡号][手机号]"
    assert redact("订单号是12345678901234567890123") == "订单号是12345678901234567890123"
    # found by hypothesis: masking the mobile left a card number standing alone for a second redaction
    text = "0" * 40 + "一13000000000三000000000000000"
    assert redact(redact(text)) == redact(text) == "0" * 40 + "一[手机号][银行卡号]"


def test_ordinary_text_is_untouched() -> None:
    for text in (
        "型号是XQB80-1688，去年八月份买的。",
        "价格1299元，2024年3月15日下午3点送到。",
        "用了十几年，一一核对过了，请您稍等一下。",
        "我们的热线是400-050-0827。",
        "订单在3天内送达，保修期1年。",
    ):
        assert redact(text) == text


mobiles = st.builds(
    lambda second, rest: "1" + second + rest,
    st.sampled_from("3456789"),
    st.text(alphabet=string.digits, min_size=9, max_size=9),
)


def _spell(number: str, style: str) -> str:
    if style == "spoken":
        return "".join(SPOKEN[d] for d in number)
    if style == "dashed":
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if style == "spaced":
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    return number


@settings(max_examples=200, deadline=None)  # a loaded CI machine is slow, not wrong
@given(
    mobiles,
    st.sampled_from(["plain", "spoken", "dashed", "spaced"]),
    st.sampled_from(["我的号码是", "打", ""]),
)
def test_generated_mobiles_never_survive(number: str, style: str, prefix: str) -> None:
    out = redact(f"{prefix}{_spell(number, style)}，谢谢")
    assert number not in "".join(c for c in out if c.isdigit())
    assert MASKS["mobile"] in out


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=string.digits, min_size=16, max_size=19).filter(lambda s: s[0] != "0"), st.booleans())
def test_generated_card_and_id_numbers_are_masked(body: str, id_with_x: bool) -> None:
    """16-19 digits (bank cards, 18-digit IDs) and 17 digits + X (IDs) are always masked."""
    if id_with_x:
        body = (body + "0")[:17]
    number = body + ("X" if id_with_x else "")
    digits = "".join(c for c in redact(f"号码{number}。") if c.isdigit())
    assert body not in digits


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=99999),
    st.integers(min_value=2000, max_value=2030),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=28),
    st.sampled_from(["XQB", "BCD-", "KFR-", "JSQ"]),
)
def test_prices_dates_and_models_untouched(price: int, year: int, month: int, day: int, model: str) -> None:
    text = (
        f"型号{model}{price}，价格{price}元，{year}年{month}月{day}日购买，{year}-{month:02d}-{day:02d}安装。"
    )
    assert redact(text) == text


def test_call_names_lose_phone_numbers_but_keep_their_ids() -> None:
    from copilot.transcription.redact import name_redactor

    clean = name_redactor(True)
    assert clean("stc3-3853239869252399") == "stc3-3853239869252399"  # a dialogue id, not a bank card
    assert clean("musied-91255726") == "musied-91255726"
    assert "13812345678" not in clean("13812345678_20261205_1432.wav")
    assert "13912345678" not in clean("客户13912345678回访")
    assert name_redactor(False)("13812345678.wav") == "13812345678.wav"
