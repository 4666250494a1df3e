"""The situation layer: file validation, the shipped file against the shipped passages, and honesty checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from copilot.errors import KnowledgeError
from copilot.knowledge import load_passages
from copilot.knowledge.retrieval import index_text
from copilot.knowledge.situations import (
    link_situations,
    load_situations,
    parse_situations,
    read_situations,
    situations_hash,
)

REPO = Path(__file__).resolve().parent.parent
KNOWLEDGE = REPO / "knowledge"
# Every retrieval set, the rule of knowledge/situations.yaml's header: a set added later is covered too.
EVAL_SETS = tuple(sorted((REPO / "eval").glob("retrieval*.yaml")))
# Character-bigram Jaccard similarity above which a phrasing counts as a copy of an eval query
# (the shipped file's closest pair is about 0.24; a light paraphrase of a query scores 0.5 or more).
NEAR_COPY = 0.4
# Phrasings of 2026-11-23 (2e86ce5) that the blind set's readers, who never saw them, wrote again on 2026-12-07:
# idioms any two writers share (你别打断我,听我说完), not copies.
SHARED_BEFORE_BLIND_SET = frozenset({"你别打断我,听我说完", "一句道歉都没有吗", "你查完了再打给我吧"})
MIN_SITUATIONS = 60  # the handbooks cover at least this many distinct call moments


def _bigrams(text: str) -> set[str]:
    compact = re.sub(r"[^\w]", "", text)
    return {compact[i : i + 2] for i in range(len(compact) - 1)}


def _similarity(a: str, b: str) -> float:
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / max(1, len(x | y))


def test_parse_validates_fields():
    good = [{"key": "k", "title": "t", "clauses": ["q"], "examples": ["e1", "e2"]}]
    (situation,) = parse_situations(good)
    assert situation.clauses == ("q",) and situation.examples == ("e1", "e2")
    assert situation.paraphrases == ()
    (paraphrased,) = parse_situations([{**good[0], "paraphrases": ["p1"]}])
    assert paraphrased.paraphrases == ("p1",)
    assert parse_situations(None) == []
    bad_documents = [
        {"key": "k"},  # not a list
        [{"key": "k", "title": "t", "clauses": [], "examples": ["e"]}],  # no clause
        [{"key": "k", "title": "t", "clauses": ["q"], "examples": "e"}],  # not a list of examples
        [{"key": "k", "title": "t", "clauses": ["q"], "examples": ["e"], "typo": 1}],  # unknown field
        [{"title": "t", "clauses": ["q"], "examples": ["e"]}],  # no key
        [*good, *good],  # duplicate key
        [{"key": "k", "title": "t", "clauses": ["q"], "examples": ["e", ""]}],  # empty example
        [{"key": "k", "title": "t", "clauses": ["q"], "examples": ["e"], "paraphrases": "p"}],  # not a list
        [{"key": "k", "title": "t", "clauses": ["q"], "examples": ["e"], "paraphrases": ["p", ""]}],  # empty
    ]
    for document in bad_documents:
        with pytest.raises(KnowledgeError):
            parse_situations(document)


def test_missing_file_means_no_situations_and_bad_yaml_is_a_clear_error(tmp_path):
    assert read_situations(tmp_path / "none.yaml") == []
    broken = tmp_path / "situations.yaml"
    broken.write_text("- key: [unclosed\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"situations\.yaml"):
        read_situations(broken)


def test_hash_changes_with_any_edit():
    base = parse_situations([{"key": "k", "title": "t", "clauses": ["q"], "examples": ["e"]}])
    edited = parse_situations([{"key": "k", "title": "t", "clauses": ["q"], "examples": ["e", "f"]}])
    assert situations_hash(base) == situations_hash(list(base))
    assert situations_hash(base) != situations_hash(edited)


def test_shipped_situations_link_to_shipped_passages():
    situations = load_situations(KNOWLEDGE)
    passages = load_passages(KNOWLEDGE)
    assert len(situations) >= MIN_SITUATIONS
    links = link_situations(situations, passages, [index_text(p) for p in passages])
    assert links.unresolved == ()
    assert all(links.passages)
    linked_sources = {passages[row].source for rows in links.passages for row in rows}
    assert len(linked_sources) == len({p.source for p in passages})  # every handbook is covered


def test_shipped_phrasings_are_not_copies_of_eval_queries():
    situations = load_situations(KNOWLEDGE)
    queries = [item["query"] for path in EVAL_SETS for item in yaml.safe_load(path.read_text("utf-8"))]
    assert queries
    copies = [
        (example, query, round(_similarity(example, query), 2))
        for situation in situations
        for example in (situation.title, *situation.examples, *situation.paraphrases)
        if example not in SHARED_BEFORE_BLIND_SET
        for query in queries
        if _similarity(example, query) >= NEAR_COPY
    ]
    assert copies == []


@pytest.mark.parametrize(
    ("key", "says_it", "does_not"),
    [
        # a whole turn of 没有了 answers 还有其他可以帮您的吗; 没有了 inside a sentence is something else
        (
            "closing",
            [
                "嗯没有了",
                "没有了谢谢嗯嗯",
                "嗯没有了没有了谢谢",
                "好好那就这样吧",
                "嗯行就这样啊",
                "行了不说了我在忙",
            ],
            [
                "嗯没有了然后就是我要求赔付因为",
                "那连保险都没有了你们这个",
                "就这样",
                "他就这样对我",
                "不说了不说了我听着",
            ],
        ),
        # the caller asks the agent to repeat; a caller repeating herself is not asking
        # ... or a bare 什么 / 你说什么 (a pardon); 什么 inside a question or an outburst is not one
        (
            "speech_pace",
            [
                "嗯什么你再说一遍",
                "你说啥",
                "你说的太快了",
                "什么",
                "嗯什么?",
                "你说什么",
                "我都听不懂你在讲啥",
            ],
            [
                "我再说一遍我要退款",
                "他也没说啥",
                "什么时候退款",
                "你说什么呢你",
                "这是什么态度",
                "我没听懂他的意思",
            ],
        ),
        # ... or the caller's first words ask for another kind of business; a business named mid-sentence is not
        (
            "wrong_number",
            [
                "不好意思我打错了",
                "打错电话了",
                "是不是打错了",
                "我好像打错号码了",
                "喂你好是申通快递吗",
                "这里不是中国联通吗",
                "你们是银行吧我要挂失",
            ],
            [
                "我地址打错了",
                "他们把地址打错了字",
                "我打了好几个电话",
                "是不是快递公司的问题啊",
                "我在医院呢",
                "你是那个商家吗",
                "那个快递员是不是送错了",
            ],
        ),
        # a manager, or another agent; being passed from one to the next is a complaint, not a request
        (
            "transfer_manager",
            ["叫你们经理来", "你给我换个客服", "你能不能换一个人跟我说"],
            ["我刚才反馈的问题怎么一直换人啊", "我换了个手机号", "今天客户经理上门来帮忙办理了,真是太感谢了"],
        ),
        (
            "agent_nickname",
            ["你是哪位", "你叫什么名字", "你工号多少", "怎么称呼你"],
            ["你是那个商家吗", "我叫李明"],
        ),
        # the caller cannot hear the agent; a product that sounds too quiet, or a long complaint about the
        # phone's signal, is a repair
        (
            "complain_cannot_hear",
            ["你大声点", "你声音太小了", "您声音有点小", "喂喂你那边信号不好我听不清"],
            [
                "电视声音小",
                "音箱的声音很小",
                "手机听筒听不到声音了",
                "家里的宽带这几天信号不好你们赶紧派人过来看一下",
                "能听到能听到",
                "喂您好能听得到吗",
            ],
        ),
        # the caller asks whether the agent hears them; saying they hear, or that they cannot, is not asking
        (
            "line_check",
            ["喂您好能听得到吗", "你能听见我说话吗", "您那边听得清吧", "听不到吗"],
            [
                "能听到能听到",
                "听不到啊",
                "我这边听不清你说话",
                "你们客服电话打了半天都没人接听到底能不能处理",
            ],
        ),
        # the caller asks to be heard out; a question after it, or someone else not listening, is not
        (
            "patience",
            ["你先听我把话说完", "能不能先听我讲", "您听我说啊"],
            ["你听我说我要退款", "我听说你们有赔偿", "商家根本不听我说"],
        ),
        # the caller asks the agent to look it up; asking for a solution, or pointing at something, is not
        (
            "hold_short",
            [
                "你帮我查一下那个订单",
                "照片发过去了您看一下",
                "你查查后台吧",
                "图我传好了",
                "那张照片你收到没有",
                "我上午下的那个订单你那边能看到吗",
            ],
            [
                "你看看这事怎么办",
                "你看看你们这服务",
                "你看看那个时间都过了多久",
                "我自己查一下",
                "菜里有头发了",
                "照片一直传不上去了",
                "汤里全是虫子你没看到吗",
            ],
        ),
        # the caller asks how long the handling takes; how long something else has been, is not
        (
            "progress_update",
            ["这个要多长时间才能处理好", "退款几天能到账"],
            ["这个菜放了多长时间了", "我等了多长时间你知道吗"],
        ),
        # ... and how long, asked alone (大约得多久啊): the agent confirms before naming a time
        ("cannot_answer_now", ["那大概要多久啊", "这个得多长时间"], ["我都等了多长时间了", "要多久都行"]),
        # the caller asks whether they will be paid; someone refusing to pay is not asking
        ("compensation", ["出了这种事你们赔不赔", "这个损失谁来承担"], ["他说他不赔"]),
        # the caller asks how to do it, or checks a step back; asking for a solution, or about what others did, is not
        (
            "how_to",
            [
                "这个评价要怎么提交啊",
                "我该怎么申请呢",
                "退款在哪儿点",
                "截图从哪里上传",
                "直接提交就可以了是吧",  # a step checked back
                "点开那个链接是吗",
                "我是不是需要先申请退款",
            ],
            [
                "那现在怎么办",
                "你们怎么退的款",
                "商家怎么还不处理",
                "我不怎么上网",
                "我中午点了一份炒饭对吧",  # 点 is ordering here
                "他帮我申请了一张券是吧",  # an outcome, not a step
            ],
        ),
        # a step of the caller's fails; someone else refusing, or not reaching someone, is not
        (
            "operation_fails",
            ["退款申请提交不了", "照片一直传不上去了", "这个评价点不进去"],
            ["商家说退不了", "他说申请不了", "骑手一直联系不上", "超过时间就申请不了售后吗"],
        ),
        # the caller complains, or asks whether they may; a complaint already made, or someone else's, is not
        (
            "complaint_cannot_answer",
            ["我要投诉这个店", "我可不可以投诉他", "那我只能投诉了"],
            ["我上周已经投诉过了", "商家说我投诉他也没用"],
        ),
        # the caller cannot reach the other side; our own hotline, someone else's excuse, being unreachable
        # oneself, a denial, or words that do not end the line are not
        (
            "cannot_reach",
            [
                "店家一直联系不上",
                "我打骑手电话没人接",
                "商家消息都不回复",
                "消息一直发不出去",
                "骑手没人接你们管不管",
            ],
            [
                "你们客服电话总是打不通",
                "你们都联系不上他我怎么联系",
                "他说给我打电话打不通",
                "到时候快递联系不到我怎么办",
                "我没有打不通他的电话",
                "商家联系不上的话我就先去上班了等你们消息",
            ],
        ),
        # the caller says when to call, or when not to; a call that came or did not, a hold, someone else's
        # calls, or the words in a long line are not
        (
            "callback_time",
            [
                "晚上打给我吧",
                "你们明天上午再联系我",
                "中午十二点以前别给我打电话",
                "我在开会不要打电话",
                "打电话的话就下午三点以后",
            ],
            [
                "说好今天上午联系我也没联系我",
                "你们下午打过来的时候我没接到",
                "你别挂电话我问一下",
                "别人给我打电话老是打不通",
                "我昨天晚上打了好几次电话都没人接然后今天早上又打你们的客服电话才打通的你说这叫什么事啊",
            ],
        ),
        # the caller only urges, or hands the matter over; urging inside a question or a demand of its own is
        # answered as that, a look-up (你查一下吧) by the hold script
        (
            "urging",
            [
                "你们抓紧一点",
                "行那你快点儿",
                "赶紧帮我弄好",
                "让他马上给我回个电话",
                "那就尽快吧",
                "那你先联系吧",
                "你给我操作吧",
            ],
            [
                "你查一下吧",
                "好你看吧",
                "能不能快点退款",
                "你们什么时候能快一点",
                "抓紧时间赔给我",
                "我赶紧去医院看了一下就说是过敏",
                "好的马上马上",  # the caller doing what the agent asked, right away
                "我马上就到家了",
            ],
        ),
        # the caller asks what something said means; the thing they found, or "or something", is not
        (
            "explain_again",
            ["积分抵扣是啥意思啊", "那个保障金是什么", "你说的待审核是什么意思呢"],
            ["我也不知道是什么东西", "看不清是什么", "虫子还是什么", "没什么意思"],
        ),
        # the caller asks whether the agent understood them; the caller not understanding, or a long line, is not
        (
            "confirm_problem",
            [
                "你到底有没有听懂我的意思",
                "你听不懂吗",
                "你们是不是听不懂人话",
                "你听懂了没有",
                "你还是没明白我的话吗",
                "能明白我的意思吗",
            ],
            [
                "我没听懂他说的",
                "听不懂",
                "我不明白你说的",
                "你听懂了没有我要的是退款然后再赔偿我五十块钱不然我就投诉",
            ],
        ),
        # the caller's own suggestion, not advice quoted
        (
            "suggestion",
            ["我建议你们增加夜间配送", "希望你们以后注意一下包装"],
            ["上次客服建议您重启一下", "我们给他建议他也不听", "他们建议客户换个套餐", "我建议你先别急"],
        ),
        # thanks that is the point of the line; not one taken back by a "but", nor the close of a request
        (
            "thanks",
            ["好的谢谢你", "明白了,谢谢", "那麻烦你了谢谢"],
            [
                "感谢 还是不行",
                "好的,谢谢了,不过这个号码能停用吗",
                "谢谢,只是还是收不到短信",
                "多谢,然而问题依旧",
                "感谢,但没用啊",
                "请尽快处理!谢谢!",
                "尽快谢谢",
            ],
        ),
        # fine again; not asking whether it was solved, asking to solve it, or a demand
        (
            "resolved",
            ["已经恢复了", "清理了一下手机就好了", "现在同步好了", "问题已经解决了"],
            ["你们先解决了没有解决啊", "嗯行那你给我解决了吧", "你催促一下就好了", "现在心情都不好了"],
        ),
        # an apology asked for; not one declined, one already made, or one beside a sum (the sum is the demand)
        (
            "apology",
            ["不但退款还得给我道歉呢", "难道不赔我一个道歉吗", "连句对不起都没有"],
            [
                "我不要求你给我道歉",
                "他给我道过一次歉了",
                "要求他给我道歉而且十倍赔偿",
                "我给你道个歉就完事儿了",
            ],
        ),
        # the agent's own number or whereabouts asked for; not the agent's call reaching the caller
        (
            "personal_info",
            ["你的私人电话是多少", "把你的微信给我", "你们这是在哪个城市"],
            ["我来我接听到你的电话因为我这个电话不经常开机好吧", "我刚才没接你的电话", "我打你的电话打不通"],
        ),
        # asking to be put through to the order's own agent, not any mention of them
        (
            "named_colleague",
            ["我说帮我联系一下这个专属客服可以吗", "你把专员的电话给我"],
            ["联系不到你们的专属客服", "好的我看一下这个订单的专属客服"],
        ),
    ],
)
def test_shipped_cues_catch_the_moment_and_not_lookalikes(key, says_it, does_not):
    cues = {s.key: s.cues for s in load_situations(KNOWLEDGE)}[key]
    assert all(re.search(cues, text) for text in says_it), says_it
    assert not any(re.search(cues, text) for text in does_not), does_not


@pytest.mark.parametrize(
    "path", [p for p in EVAL_SETS if p.name != "retrieval_offtopic.yaml"], ids=lambda p: p.name
)
def test_every_label_of_the_retrieval_sets_names_a_shipped_passage(path):
    """Each label on its own, not only one per query: a stale second label would make a query easier to miss."""
    from copilot.evaluation.retrieval import LabelledQuery, load_set, unlabelled

    items = load_set(path)
    assert items and all(item.expect for item in items)  # these sets hold fitting queries only
    one_label_each = [LabelledQuery(label, (label,)) for item in items for label in item.expect]
    assert unlabelled(one_label_each, load_passages(KNOWLEDGE)) == []
