"""Personal names in call text: jieba's POS tags (nr*) against the product's rule (a cue such as 我叫 / 我是 /
姓名, a common surname, jieba's dictionary as a veto). Prints precision and recall on a small hand-written set
(made up for this benchmark: names, brands, places and the agent's own name; no customer data).

    .venv/bin/python eval/bench_redact_names.py
"""

from __future__ import annotations

from copilot.config import load_jieba
from copilot.transcription.redact import find_pii

# (text, the names in it that are a customer's)
CASES: list[tuple[str, tuple[str, ...]]] = [
    ("我叫张伟，电话打不通", ("张伟",)),
    ("我是王建国，上周报修过", ("王建国",)),
    ("联系人是李娜，她白天在家", ("李娜",)),
    ("收货人是陈晓明", ("陈晓明",)),
    ("姓名是欧阳娜娜", ("欧阳娜娜",)),
    ("我叫刘洋，家里的空调不制冷", ("刘洋",)),
    ("机主是赵磊，是我丈夫", ("赵磊",)),
    ("我是孙丽的家属，帮她问一下", ("孙丽",)),
    ("登记人是周杰，麻烦核对", ("周杰",)),
    ("名字叫黄志强", ("黄志强",)),
    ("户主是吴敏", ("吴敏",)),
    ("我是马涛，订单有问题", ("马涛",)),
    ("师傅说找郑强签字就行", ("郑强",)),
    ("张伟先生您好，这边是售后", ("张伟",)),
    ("我是美家电器的客服小李", ()),
    ("我是想问一下洗衣机的问题", ()),
    ("我是高新区的用户", ()),
    ("我是张家口的，能上门吗", ()),
    ("我姓王，王先生", ()),
    ("小天鹅的洗衣机是不是你们修", ()),
    ("海尔的冰箱也能修吗", ()),
    ("格力空调不制冷了", ()),
    ("师傅上门的时候带上配件", ()),
    ("您的余额还有五十块", ()),
    ("周末有空吗，周一也行", ()),
    ("我是老用户了，一直用你们家的", ()),
    ("我是第一次打电话", ()),
    ("江南大道那边的网点", ()),
    ("马上给您安排", ()),
    ("我是通过官网下单的", ()),
]


def _jieba_names(text: str) -> set[str]:
    load_jieba()
    import jieba.posseg

    return {w.word for w in jieba.posseg.lcut(text) if w.flag.startswith("nr") and len(w.word) >= 2}


def _rule_names(text: str) -> set[str]:
    return {s.text for s in find_pii(text, {"name"})}


def _score(found: dict[str, set[str]]) -> tuple[int, int, int]:
    tp = fp = fn = 0
    for text, names in CASES:
        got, want = found[text], set(names)
        tp += len(got & want)
        fp += len(got - want)
        fn += len(want - got)
    return tp, fp, fn


def main() -> None:
    print(f"{len(CASES)} sentences, {sum(len(n) for _, n in CASES)} customer names")
    print(f"{'method':<28} {'precision':>9} {'recall':>7} {'false masks':>11}")
    for label, finder in (("jieba POS (nr*)", _jieba_names), ("cue + surname + jieba veto", _rule_names)):
        tp, fp, fn = _score({text: finder(text) for text, _ in CASES})
        precision = tp / (tp + fp) if tp + fp else 0.0
        print(f"{label:<28} {precision:>9.2f} {tp / (tp + fn):>7.2f} {fp:>11}")


if __name__ == "__main__":
    main()
