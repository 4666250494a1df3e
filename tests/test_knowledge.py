"""Knowledge base: noise removal, boilerplate, sections, passages, scripts (no model needed)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from copilot.knowledge.charlm import default_model, noise_spans
from copilot.knowledge.clean import clean_document
from copilot.knowledge.passages import passage_id
from copilot.knowledge.scripts import extract_scripts, merge_custom
from copilot.knowledge.sections import split_sections

REPO = Path(__file__).resolve().parent.parent
RAW = REPO / "knowledge" / "raw"
NOISY = RAW / "004_bbfade7ac7a8e3da.txt"
# GB2312 level-1 characters, as in the web-preview noise (a sample, so the test is independent of 004).
COMMON_CHARS = (
    "颓码凸瞬怨疙蝴鹃硬弹端升娜澡寝探赘剔堤儒劫茨宪咀耿耳谨枪瑶剖矗椰甭扳贸湖瘁掸拍枷镶膘敞襟兹衷溉厄膨讥沁滦"
)


@pytest.fixture(scope="module")
def cleaned_004():
    return clean_document(NOISY.name, NOISY.read_text(encoding="utf-8"), model=default_model())


def test_noise_run_between_real_sentences_is_found_and_real_text_kept():
    rng = random.Random(7)
    noise = "".join(rng.choice(COMMON_CHARS) for _ in range(60))
    before, after = "客户投诉时要耐心倾听,不要打断。", "处理完毕后要及时回访客户。"
    spans = noise_spans(before + noise + after, min_chars=12)
    assert len(spans) == 1
    found = (before + noise + after)[spans[0].start : spans[0].end]
    assert abs(len(found) - len(noise)) <= 3  # boundaries within a character or two
    assert before[:-3] not in found and after[3:] not in found


def test_clean_handbooks_have_no_noise():
    for path in sorted(RAW.glob("00[0-3]_*.txt")):
        document = clean_document(path.name, path.read_text(encoding="utf-8"))
        assert document.noise_chars == 0, path.name


def test_004_noise_removed_and_real_sentences_survive(cleaned_004):
    noise = [d.text for d in cleaned_004.drops if d.kind == "noise" and len(d.text) >= 100]
    assert len(noise) >= 3
    kept = "\n".join(cleaned_004.lines)
    for run in noise:
        for start in range(0, len(run) - 12, 12):
            assert run[start : start + 12] not in kept
    for sentence in (
        "售后服务工作是一个综合技能要求相当高的工作",
        "认真仔细,耐心地听申诉者说话,并边听边记录",
        "顾客的愤怒就像充气的气球一样",
        "7、办法多一点",
    ):
        assert sentence in kept


def test_committed_passages_hold_no_noise(cleaned_004):
    passages = [json.loads(line) for line in (REPO / "knowledge" / "passages.jsonl").read_text().splitlines()]
    assert len(passages) > 100
    runs = [d.text for d in cleaned_004.drops if d.kind == "noise" and len(d.text) >= 100]
    for passage in passages:
        for run in runs:
            assert run[:10] not in passage["text"] and run[-10:] not in passage["text"]
        assert "VIP" not in passage["text"] and "http" not in passage["text"]


def test_boilerplate_urls_and_truncation_are_dropped_and_reported():
    text = (
        "- 1、该文档为VIP文档,如果想要下载,成为VIP会员后,下载免费。\n"
        "售后服务手册\n一、接听规范\n电话响两声内接起,没有http://doc.example.net/a.html关系。\n"
        "要建立信息管理机制,仅授权"
    )
    document = clean_document("x.txt", text)
    kinds = {d.kind for d in document.drops}
    assert {"boilerplate", "url", "truncated"} <= kinds
    assert document.title == "售后服务手册"
    assert "电话响两声内接起,没有关系。" in document.lines


def test_sections_follow_the_documents_own_headings():
    lines = [
        "手册",
        "第一部分 礼仪规范 第一条:仪表端庄 头发要整洁。",
        "一、接听",
        "1.问候",
        "先问候客户。",
        "二、结束",
        "说再见。",
    ]
    sections = split_sections(lines)
    paths = [s.path for s in sections]
    assert ("第一部分 礼仪规范", "第一条 仪表端庄") in paths
    assert any(p[-2:] == ("一、接听", "1.问候") for p in paths)
    assert any(p[-1] == "二、结束" and "1.问候" not in p for p in paths)


def test_a_heading_name_leaves_the_next_items_number_to_its_body():
    lines = [
        "操作规程",
        "一、服务范围",
        "2. 服务时间要求2.1. 客户报修后,24小时内联系客户。",
        "2.2. 对于设备故障导致的停机时间,12小时内赶到现场。",
        "五、S181",  # a report's name ends in digits: they are part of it
        "报表每日核对。",
    ]
    paths = [s.path for s in split_sections(lines)]
    assert ("一、服务范围", "2.服务时间要求") in paths
    assert ("一、服务范围", "2.服务时间要求", "2.2.对于设备故障导致的停机时间") in paths
    assert ("五、S181",) in paths


def test_a_chapter_met_after_numbered_items_is_above_them_not_inside_them():
    # the document's 第一章 was glued to its title, so 1.1 comes first and 第二章 later
    lines = [
        "培训手册",
        "1.1 什么是服务意识服务意识是提升满意度的基石。",
        "1.2 重要性培养员工的服务意识,可以提高水准。",
        "第二章:基本技巧培训2.1 沟通技巧沟通是服务的核心。",
        "2.2 解决问题的能力人员应具备解决问题的能力。",
        "第三章:实操技能3.1 投诉处理投诉不可避免。",
    ]
    paths = [s.path for s in split_sections(lines)]
    assert ("第二章 基本技巧培训",) in paths
    assert any(p[0] == "第二章 基本技巧培训" and p[-1].startswith("2.2") for p in paths)
    assert ("第三章 实操技能",) in paths
    assert not any("1.2" in name for p in paths for name in p[:-1])


def test_a_quotation_the_handbook_recommends_after_forbidding_another_is_a_script():
    from copilot.knowledge.passages import PassageRecord

    text = (
        "若客户误会,避免直接说“您搞错了”,可通过“可能是我没有说清楚,我再跟您说一遍”澄清;"
        "不要说“你懂不懂?”或者“你会不会用?”;电话里避免嘈杂,必要时可说“请您稍等,我换个地方接”。"
    )
    kinds = {s.text: s.kind for s in extract_scripts([PassageRecord("p", "d.txt", "t", "s", text)])}
    assert kinds == {
        "您搞错了": "forbidden",
        "可能是我没有说清楚,我再跟您说一遍": "script",
        "你懂不懂?": "forbidden",
        "你会不会用?": "forbidden",  # listed with the one before it
        "请您稍等,我换个地方接": "script",
    }


def test_passage_ids_are_stable_and_content_derived():
    assert passage_id("a.txt", "一、x", "text") == passage_id("a.txt", "一、x", "text")
    assert passage_id("a.txt", "一、x", "text") != passage_id("a.txt", "一、x", "text2")


def test_scripts_extracted_with_situation_and_forbidden_phrases(tmp_path):
    from copilot.knowledge.passages import PassageRecord

    records = [
        PassageRecord(
            "p1",
            "d.txt",
            "t",
            "规范 > 4、遇到用户讲方言无法听懂时",
            "4、遇到用户讲方言无法听懂时“非常抱歉,您能够说普通话吗?”",
        ),
        PassageRecord("p2", "d.txt", "t", "共情", "避免使用“您别激动”等否定性语言。"),
    ]
    scripts = extract_scripts(records)
    by_text = {s.text: s for s in scripts}
    assert by_text["非常抱歉,您能够说普通话吗?"].situation_key == "dialect"
    assert by_text["非常抱歉,您能够说普通话吗?"].kind == "script"
    assert by_text["您别激动"].kind == "forbidden"
    custom = tmp_path / "scripts_custom.yaml"
    custom.write_text(
        f"- disable: {by_text['您别激动'].id}\n- text: 请您稍等,我帮您查一下。\n  situation: 需要查询时\n",
        encoding="utf-8",
    )
    merged = merge_custom(scripts, custom)
    assert "您别激动" not in {s.text for s in merged}
    added = next(s for s in merged if s.origin == "custom")
    assert added.stage == "hold"
    # a written script names the clause it rests on; ingest links the passage holding those words
    custom.write_text(
        "- text: 请您稍等。\n  situation: 需要查询时\n  rests_on: 否定性语言\n", encoding="utf-8"
    )
    resting = next(s for s in merge_custom(scripts, custom, records) if s.origin == "custom")
    assert (resting.passage_id, resting.section) == ("p2", "共情")
    records_twice = [*records, PassageRecord("p3", "d.txt", "t", "x", "非常抱歉,请稍等")]
    for quote, found in (("否定性语言和", "no passage"), ("非常抱歉,", "2 passages")):  # none, two
        custom.write_text(
            f"- text: 请您稍等。\n  situation: 需要查询时\n  rests_on: {quote}\n", encoding="utf-8"
        )
        warnings: list[str] = []
        kept = merge_custom(scripts, custom, records_twice, warn=warnings.append)
        assert next(s for s in kept if s.origin == "custom").passage_id == ""  # kept, uncited
        assert len(warnings) == 1 and "entry 1" in warnings[0] and found in warnings[0]


def test_headings_glued_to_their_text_are_split_off_as_configured(tmp_path):
    from copilot.knowledge import ingest, load_passages

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text(
        "热线规范\n\n无声电话问候语于常规开头语之后,如果没有声音,重复俩次“请问有什么能够帮您?”。\n\n"
        "了解用户姓氏时的称呼语于后面的通话中应使用“*先生/小姐”。\n",
        encoding="utf-8",
    )
    (tmp_path / "ingest_rules.yaml").write_text(
        "glued_headings: [无声电话问候语, 了解用户姓氏时的称呼语]\n", encoding="utf-8"
    )
    result = ingest(tmp_path, log=lambda _m: None)
    by_section = {p.section: p.text for p in load_passages(tmp_path)}
    assert by_section["无声电话问候语"].endswith(
        "于常规开头语之后,如果没有声音,重复俩次“请问有什么能够帮您?”。"
    )
    assert "了解用户姓氏时的称呼语" in by_section
    assert "heading split off its text: 无声电话问候语" in result.report
    silent = next(s for s in result.scripts if s.text == "请问有什么能够帮您?")
    assert silent.section == "无声电话问候语"


def test_glued_headings_split_only_whole_line_openings():
    from copilot.knowledge.clean import CleanRules

    text = "手册\n\n常规开头语“您好,请问有什么可以帮您?”\n\n客户说常规开头语太长。\n"
    document = clean_document("x.txt", text, rules=CleanRules(glued_headings=("", "常规开头语")))
    at = document.lines.index("常规开头语")
    assert document.lines[at + 1] == "“您好,请问有什么可以帮您?”"
    assert "客户说常规开头语太长。" in document.lines  # inside a line it is the text's own word
    assert document.notes == ("heading split off its text: 常规开头语",)


@pytest.mark.parametrize("key", ["drop_lines", "drop_inline", "glued_headings"])
def test_a_rules_entry_written_as_one_string_is_refused_not_read_by_character(tmp_path, key):
    from copilot.errors import KnowledgeError
    from copilot.knowledge.ingest import load_rules

    (tmp_path / "ingest_rules.yaml").write_text(f'{key}: "讲师"\n', encoding="utf-8")
    with pytest.raises(KnowledgeError, match=f"{key} must be a list"):
        load_rules(tmp_path)
    (tmp_path / "ingest_rules.yaml").write_text(f"{key}:\n  - 讲师\n", encoding="utf-8")
    rules = load_rules(tmp_path)
    assert "讲师" in (*rules.drop_lines, *rules.drop_inline, *rules.glued_headings)


def test_ingest_round_trip_on_a_small_knowledge_folder(tmp_path):
    from copilot.knowledge import domain_vocabulary, ingest, load_passages, load_scripts

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.md").write_text(
        "# 电话礼仪\n## 接听\n### 开头\n电话响两声内接起,先说“您好,这里是售后服务中心,请问有什么可以帮您?”\n",
        encoding="utf-8",
    )
    (tmp_path / "guidelines_custom.md").write_text("# 保修\n油烟机保修期内免费上门维修。\n", encoding="utf-8")
    (tmp_path / "vocabulary_custom.txt").write_text("油烟机\n", encoding="utf-8")
    result = ingest(tmp_path, log=lambda _m: None)
    passages = load_passages(tmp_path)
    assert {p.source for p in passages} == {"a.md", "guidelines_custom.md"}
    assert any(p.section == "接听 > 开头" for p in passages)  # the first line is the document title
    assert any(s.text.startswith("您好,这里是售后服务中心") for s in load_scripts(tmp_path))
    assert domain_vocabulary(tmp_path)[0] == "油烟机"
    assert "# Ingestion report" in result.report and (tmp_path / "ingest_report.md").is_file()
