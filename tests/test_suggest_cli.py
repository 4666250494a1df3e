"""`copilot suggest --file … --json` with the real packaged models: the issue's held-out check, on our own lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.judgement import default_engine
from copilot.suggest.engine import NON_SUGGESTION_KINDS
from copilot.types import Segment
from tests.cli_lists import list_answers

LINES = ("我的洗衣机不能脱水了", "你们必须给我退款，不然我投诉", "把你的手机号告诉我")


@pytest.mark.real
def test_one_guarded_cited_suggestion_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = list_answers(tmp_path, capsys, "suggest", "\n".join(LINES) + "\n")
    assert len(rows) == len(LINES)
    rules = default_engine()
    for row in rows:
        assert set(row) >= {"script", "text", "cites", "fallback", "reason", "latency_ms"}
        assert row["cites"] and all(c["id"] and c["text"] for c in row["cites"])
        said = Segment("agent", 0.0, 2.0, row["text"])
        broken = [f.rule for f in rules.check_utterance(said) if f.kind not in NON_SUGGESTION_KINDS]
        assert row["text"] and not broken, (row["text"], broken)
        assert row["latency_ms"]["script"] is not None and row["latency_ms"]["done"] is not None


# Real callers' moments (phrasings of ../shared/realdata's tune part) and what the shipped knowledge answers.
MOMENTS = {
    "你说啥你再说一遍": "我再慢一点为您重复一遍",  # asked to repeat: slower, again
    "你说什么": "我再慢一点为您重复一遍",  # a pardon is the same moment
    "不好意思我打错了": "请您查证后再拨",  # the caller dialled the wrong number (said, not only guessed)
    "你大声点": "请问现在您能听到吗",  # the caller cannot hear the agent
    "嗯没有了": "感谢您的来电,再见",  # the answer to 还有其他可以帮您的吗
    "嗯您稍等我看一下啊": "",  # the caller asks for a moment: the agent waits
    "你好啊那个那个": "",  # a hello, not a thank-you
    "喂您能听见我说话吗": "能听到,您请讲",  # the caller checks the agent hears them
    "你先听我把话说完行吗": "您请讲,我在听",  # the caller asks to be heard out: the agent yields and listens
    "你到底有没有听懂我的意思": "我跟您复述一下您反映的问题",  # doubted: sorry, then recap what was understood
    "我都听不懂你在讲啥": "我再慢一点为您重复一遍",  # the caller cannot follow the agent
    "照片我传好了你帮我看一下": "我帮您查询一下,请您稍等",  # asked to look it up: the agent checks
    "那个图片你能看到吗": "我帮您查询一下,请您稍等",  # the example (it once got the farewell)
    "我要怎么申请退款呀": "我来一步一步跟您说怎么操作",  # how to do it: the steps, not a callback
    "上传完直接提交就可以了是吧": "我来一步一步跟您说怎么操作",  # a step checked back: walk through it
    "那个保障金是什么": "我来为您解释一下",  # what a word means: explained again, not a callback
    "我这边截图一直提交不了": "您是在哪一步操作不了呢",  # a step fails: where, then walk them through it
    "你们这样的答复有什么用啊": "您反映的问题我会记录下来",  # a question to complain: own it, no callback offer
    "那你们抓紧一点吧": "我这边尽快为您跟进处理",  # only urging: take it on now
    "你一直说抱歉有什么用": "让您觉得被敷衍是我们做得不好",  # brushed off: own it, check the matter now
    "商家电话一直打不通": "我这边帮您协调联系",  # the other side unreachable: we coordinate, no ticket
    "我能不能投诉这个商家": "非常感谢您向我们反映意见",  # asking to complain is a complaint
    "下午三点以前别给我打电话": "您说的联系时间我给您记下来了",  # when to call: recorded, then repeated back
}


@pytest.mark.real
def test_real_moments_get_the_handbook_answer_or_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = list_answers(tmp_path, capsys, "suggest", "\n".join(MOMENTS) + "\n", "--no-llm")
    for (turn, expected), row in zip(MOMENTS.items(), rows, strict=True):
        if expected:
            assert expected in row["text"], (turn, row["text"])
        else:
            assert row["text"] == "" and row["move"] == "none" and row["reason"], (turn, row)
            assert not row["special_situation_script"]


@pytest.mark.real
def test_a_calm_moment_named_by_its_words_is_no_complaint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "can you hear me" and "I sent the photo" are ordinary moments: no apology first, no special script
    lines = ("喂您能听见我说话吗", "照片我传好了你帮我看一下")
    rows = list_answers(tmp_path, capsys, "suggest", "\n".join(lines) + "\n", "--no-llm")
    assert [row["text"] for row in rows] == ["能听到,您请讲。", "我帮您查询一下,请您稍等"]
    assert not any(row["special_situation_script"] or row["empathy_first"] for row in rows)


@pytest.mark.real
def test_each_answer_names_its_line_and_a_blank_line_gets_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = list_answers(
        tmp_path, capsys, "suggest", "我的洗衣机不能脱水了\n\n我的手机号是13812345678\n\n", "--no-llm"
    )
    assert [r["utterance"] for r in rows] == ["我的洗衣机不能脱水了", "", "我的手机号是[手机号]"]
    assert rows[1]["suggestion"] == "none" and rows[0]["text"] and rows[2]["text"]


@pytest.mark.real
def test_real_no_to_a_checked_detail_gets_it_checked_again(installed_models: None) -> None:
    # Phone-call moments of ../shared/realdata's tune part, reworded: the agent checks a detail back and the
    # caller says no to it. The shipped knowledge checks again; the same 不是 after a remark is left alone.
    from copilot.config import Config
    from copilot.session.engines import Services
    from copilot.suggest.engine import SuggestOptions, run_to_end

    suggester = Services(Config()).suggester

    def answer(*turns: tuple[str, str]) -> str:
        segments = [Segment(who, float(i), i + 1.0, text) for i, (who, text) in enumerate(turns)]  # type: ignore[arg-type]
        return run_to_end(suggester.suggest(segments, options=SuggestOptions(use_llm=False))).text

    told = ("customer", "我点的那个外卖里面吃出来一个东西")
    for checked, no in [
        ("跟您核实一下是您这个来电号码尾号二二六幺的这个账户下的单吗", "嗯不是这个账户是另一个"),
        ("就是说这个订单里面是有这个头发是吗", "不是头发是钢丝球"),
        ("呃商家名称是这个吗先生", "不是"),
    ]:
        assert "我再和您核实一下" in answer(told, ("agent", checked), ("customer", no)), no
    remark = answer(told, ("agent", "我这边帮您记录一下"), ("customer", "不是这个"))
    assert "我再和您核实一下" not in remark
