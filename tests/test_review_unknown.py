"""Three check outcomes on turns-shaped transcripts (issue #17): unknown says why and weighs nothing."""

from __future__ import annotations

from copilot.qa.review import review_call, review_dict
from copilot.transcription.transcript_files import transcript_from_dict


def _turns(*pairs: tuple[str, str]) -> dict[str, object]:
    return {"id": "t1", "turns": [{"role": role, "text": text} for role, text in pairs]}


def test_a_turns_transcript_without_times_is_read_in_spoken_order() -> None:
    transcript = transcript_from_dict(
        _turns(("system", "转接"), ("agent", "您好"), ("customer", "你好")), "x"
    )
    assert not transcript.timed and transcript.source == "t1"
    assert [s.speaker for s in transcript.segments] == ["unknown", "agent", "customer"]


def test_cut_transcript_and_never_owed_apology_are_unknown_with_a_reason() -> None:
    cut = transcript_from_dict(
        _turns(
            ("customer", "我刚才说到那个订单里面有头发"),
            ("customer", "商家一直不处理这个事情"),
            ("agent", "好的我这边帮您联系商家"),
            ("customer", "好的"),
            ("agent", "请您稍等不要挂机"),
        ),
        "cut",
    )
    checks = {c["id"]: c for c in review_dict(review_call(cut))["checks"]}
    for check in ("greeting", "closing", "hold", "silence"):
        assert checks[check]["status"] == "unknown" and checks[check]["passed"] is None
        assert checks[check]["reason"]
    calm = transcript_from_dict(_turns(("agent", "您好美团客服"), ("customer", "我想问一下订单")), "calm")
    apology = next(c for c in review_call(calm).checks if c.id == "apology")
    assert apology.status == "unknown" and not apology.failed


def test_a_call_without_speech_is_not_scored() -> None:
    silent = transcript_from_dict(_turns(("agent", ""), ("customer", " ")), "silent")
    review = review_dict(review_call(silent))
    assert review["score"] is None
    assert {c["status"] for c in review["checks"]} == {"unknown"}


def test_upset_customer_without_apology_fails_and_with_apology_passes() -> None:
    upset = [("agent", "您好美团客服"), ("customer", "我吃了你们的外卖拉肚子了太过分了")]
    missing = review_call(transcript_from_dict(_turns(*upset, ("agent", "请问订单号是多少")), "a"))
    given = review_call(transcript_from_dict(_turns(*upset, ("agent", "非常抱歉给您带来不好的体验")), "b"))
    assert next(c for c in missing.checks if c.id == "apology").status == "fail"
    assert next(c for c in given.checks if c.id == "apology").status == "pass"


def test_outcome_passes_on_thanks_fails_when_upset_is_left_unreconciled() -> None:
    upset = ("customer", "我吃了你们的外卖拉肚子了太过分了")

    def outcome(*pairs: tuple[str, str]) -> str:
        review = review_call(transcript_from_dict(_turns(("agent", "您好美团客服"), *pairs), "o"))
        return next(c.status for c in review.checks if c.id == "outcome")

    assert outcome(upset, ("agent", "非常抱歉，我马上帮您申请赔付"), ("customer", "好的谢谢你")) == "pass"
    assert outcome(upset, ("agent", "请问订单号是多少"), ("customer", "我的订单号是一二三四五")) == "fail"
    assert outcome(("customer", "我想问一下订单的配送时间"), ("agent", "预计半小时送达")) == "unknown"
