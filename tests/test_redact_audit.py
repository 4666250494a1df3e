"""Redaction in the forms ASR writes (the privacy audit's cases, issue 21), and the controls it must keep.

Each leak case must lose its personal value and show the placeholder of what was removed; each control
must come back unchanged. Property tests generate spoken forms: numbers glued to a following word that
starts with a numeral, fillers between digit groups, and numbers cut over two segments of one speaker.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.transcription.redact import MASKS, redact, redact_texts

# (text, personal value that must not survive, placeholder expected)
LEAKS = [
    ("我的电话13812345678一直打不通", "13812345678", MASKS["mobile"]),
    ("你打13812345678五点以后有人", "13812345678", MASKS["mobile"]),
    ("我有13812345678两个号", "13812345678", MASKS["mobile"]),
    ("号码是幺三八幺二三四五六七八一直都能打通", "幺三八幺二三四五六七八", MASKS["mobile"]),
    ("卡号6222021234567890123一直用的", "6222021234567890123", MASKS["bank_card"]),
    ("手机138杠1234杠5678", "5678", MASKS["mobile"]),
    ("一三八，嗯，一二三四，那个，五六七八", "五六七八", MASKS["mobile"]),
    ("我微信是wx13812345678", "13812345678", MASKS["wechat"]),
    ("微信号zhangwei_1990", "zhangwei_1990", MASKS["wechat"]),
    ("QQ号是123456789", "123456789", MASKS["qq"]),
    ("座机（010）12345678", "12345678", MASKS["landline"]),
    ("家里座机号码是87654321", "87654321", MASKS["landline"]),
    ("邮箱zhangsan艾特163点com", "zhangsan", MASKS["email"]),
    ("邮箱zhangsan＠qq.com", "zhangsan", MASKS["email"]),
    ("邮箱是 zhang.san at gmail dot com", "zhang.san", MASKS["email"]),
    ("地址是北京市朝阳区建国路88号院3号楼2单元501", "建国路88号", MASKS["address"]),
    ("我住在阳光花园小区5栋1单元302室", "5栋1单元302", MASKS["address"]),
    ("我叫张伟，电话打不通", "张伟", MASKS["name"]),
    ("身份证11010519491231002X一直没用过", "11010519491231002X", MASKS["id_card"]),
    ("我的手机号码是一三八 幺二三四 五六七八，谢谢", "五六七八", MASKS["mobile"]),
]

CONTROLS = [
    "您的订单号是1234567890123456789，请记好",
    "活动时间是20261201-20261205",
    "活动时间2026.12.01-2026.12.05",
    "我们有1299，1599，1899，2199，四个价位",
    "价格分别是1299、1599、1999",
    "型号是XQB80-1688，去年八月份买的。",
    "我们的热线是400-050-0827。",
    "价格1299元，2024年3月15日下午3点送到。",
    "退款一共一千二百元",
    "我是美家电器的客服小李",
    "我是想问一下洗衣机的问题",
    "我是高新区的用户",
    "您的余额还有五十块",
    "订单号码12345678",
    "工单号码12345678",
]


@pytest.mark.parametrize(("text", "value", "mask"), LEAKS)
def test_each_audit_leak_is_masked_with_what_was_removed(text: str, value: str, mask: str) -> None:
    out = redact(text)
    assert value not in out
    assert mask in out


@pytest.mark.parametrize("text", CONTROLS)
def test_controls_are_kept(text: str) -> None:
    assert redact(text) == text


def test_only_the_configured_kinds_are_masked() -> None:
    text = "我叫张伟，电话13812345678"
    assert redact(text, kinds={"mobile"}) == f"我叫张伟，电话{MASKS['mobile']}"
    assert redact(text, kinds={"name"}) == f"我叫{MASKS['name']}，电话13812345678"


def test_a_number_cut_over_two_segments_with_the_agent_in_between_is_masked() -> None:
    texts = ["我的号码是138。", "嗯您说", "1234 5678"]
    out = redact_texts(texts, ["customer", "agent", "customer"], [0.0, 3.0, 4.0], [3.0, 4.0, 6.0])
    assert out[0] == f"我的号码是{MASKS['mobile']}。"
    assert out[1] == "嗯您说"
    assert "5678" not in out[2]


def test_segments_far_apart_are_not_joined() -> None:
    texts = ["价格是1299", "1599"]
    out = redact_texts(texts, ["customer", "customer"], [0.0, 100.0], [2.0, 102.0])
    assert out == texts


SPOKEN = dict(zip("0123456789", "洞幺两三四五六七八九", strict=True))
mobiles = st.builds(
    lambda second, rest: "1" + second + "".join(rest),
    st.sampled_from("3456789"),
    st.lists(st.sampled_from("0123456789"), min_size=9, max_size=9),
)
GLUED_WORDS = ["一直打不通", "五点以后打", "两个号都行", "一下", "三天内", "一直"]
FILLERS = ["，嗯，", "，那个，", " 嗯 ", "，就是，", "杠", "-", " "]


def _spoken(number: str, chinese: bool) -> str:
    return "".join(SPOKEN[d] for d in number) if chinese else number


@settings(max_examples=200, deadline=None)
@given(mobiles, st.booleans(), st.sampled_from(GLUED_WORDS))
def test_a_number_glued_to_a_word_starting_with_a_numeral_is_masked(
    number: str, chinese: bool, word: str
) -> None:
    out = redact(f"我的手机{_spoken(number, chinese)}{word}")
    assert out == f"我的手机{MASKS['mobile']}{word}"


@settings(max_examples=200, deadline=None)
@given(mobiles, st.booleans(), st.sampled_from(FILLERS), st.sampled_from(FILLERS))
def test_fillers_between_digit_groups_do_not_hide_a_number(
    number: str, chinese: bool, first: str, second: str
) -> None:
    spoken = _spoken(number, chinese)
    out = redact(f"电话是{spoken[:3]}{first}{spoken[3:7]}{second}{spoken[7:]}，谢谢")
    assert out == f"电话是{MASKS['mobile']}，谢谢"


@settings(max_examples=150, deadline=None)
@given(mobiles, st.integers(1, 10), st.booleans(), st.sampled_from(["嗯您说", "好的", "嗯"]))
def test_a_number_cut_anywhere_over_two_segments_is_masked(
    number: str, cut: int, chinese: bool, agent: str
) -> None:
    spoken = _spoken(number, chinese)
    texts = [f"我的手机号是{spoken[:cut]}", agent, f"{spoken[cut:]}，记一下"]
    out = redact_texts(texts, ["customer", "agent", "customer"], [0.0, 2.0, 3.0], [2.0, 3.0, 5.0])
    joined = out[0] + out[2]
    assert MASKS["mobile"] in out[0]
    assert spoken[cut:] not in out[2] and number not in joined and out[1] == agent


# ---- the commands: a batch whose file names hold a phone number, a lone surrogate in the middle --------


def _call(folder: Path, stem: str, extra: str = "") -> Path:
    path = folder / f"{stem}.json"
    segments = [
        {"role": "agent", "start": 0.0, "end": 2.0, "text": "您好，请问有什么可以帮您？"},
        {"role": "customer", "start": 2.5, "end": 5.0, "text": "洗衣机不脱水了。" + extra},
        {"role": "agent", "start": 5.5, "end": 7.0, "text": "好的，感谢您的来电，再见。"},
    ]
    path.write_text(json.dumps({"segments": segments}, ensure_ascii=True), encoding="utf-8")
    return path


def _copilot(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copilot.commands.cli", *args],
        capture_output=True,
        text=True,
        env={"COPILOT_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        timeout=600,
        check=False,
    )


def test_batch_file_names_with_a_phone_number_reach_no_output_and_no_database(tmp_path: Path) -> None:
    calls = tmp_path / "in"
    calls.mkdir()
    _call(calls, "13812345678_20261205_1432", "一")
    _call(calls, "客户13912345678回访", "二")
    home, out = tmp_path / "home", tmp_path / "out"
    done = _copilot("review", str(calls), "--out", str(out), "--no-progress", home=home)
    assert done.returncode == 0, done.stderr
    for number in ("13812345678", "13912345678"):
        assert number not in done.stdout + done.stderr
        for file in [*out.rglob("*"), *home.rglob("copilot.db*")]:
            assert number not in file.name
            if file.is_file():
                assert number.encode() not in file.read_bytes(), file
    listing = _copilot("store", "search", "--json", home=home)
    assert "13812345678" not in listing.stdout and MASKS["mobile"] in listing.stdout
    single = _copilot("review", str(calls / "客户13912345678回访.json"), "--json", home=home)
    assert json.loads(single.stdout)["call"] == f"客户{MASKS['mobile']}回访"


def test_a_lone_surrogate_in_the_middle_of_a_batch_does_not_stop_it(tmp_path: Path) -> None:
    calls = tmp_path / "in"
    calls.mkdir()
    _call(calls, "a_first", "第一个")
    _call(calls, "m_broken", "\ud800")  # valid JSON ("\\ud800"), no valid text
    _call(calls, "z_last", "最后一个")
    home, out = tmp_path / "home", tmp_path / "out"
    done = _copilot("review", str(calls), "--out", str(out), "--no-progress", home=home)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert [o["status"] for o in summary["outcomes"]] == ["reviewed"] * 3
    assert (out / "index.html").is_file() and (out / "reviews.csv").is_file()
    one = _copilot("review", str(calls / "m_broken.json"), "--json", home=home)
    assert one.returncode == 0 and "\ufffd" in one.stdout


def _batch(args: tuple[str, str, str]) -> int:
    """One batch in its own process (spawned: a fresh interpreter, as a second ``copilot review``)."""
    import os

    from copilot.config import Config
    from copilot.qa.batch import BatchOptions, run
    from tests.fakes_batch import ScriptedReviewer

    calls, out, home = args
    os.environ["COPILOT_HOME"] = home
    options = BatchOptions(out_dir=Path(out), progress=False, reports=False)
    summary = run([calls], ScriptedReviewer(), options, Config())
    return summary.reviewed + summary.skipped if not summary.failed else -summary.failed


CONCURRENT_CALLS = 120


def test_two_batches_on_one_sqlite_database_both_finish_and_store_each_call_once(tmp_path: Path) -> None:
    """Before BEGIN IMMEDIATE, one of the two always died of 'database is locked' (5 of 5 runs)."""
    import sqlite3

    calls = tmp_path / "in"
    calls.mkdir()
    for i in range(CONCURRENT_CALLS):
        _call(calls, f"call_{i:03d}", f"第{i}次")
    home = tmp_path / "home"
    jobs = [(str(calls), str(tmp_path / f"out{n}"), str(home)) for n in (1, 2)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        handled = pool.map(_batch, jobs)
    assert handled == [CONCURRENT_CALLS, CONCURRENT_CALLS]  # each call reviewed by one, skipped by the other
    with sqlite3.connect(home / "copilot.db") as db:
        rows = db.execute("select count(*), count(distinct content_hash) from calls").fetchone()
    assert rows == (CONCURRENT_CALLS, CONCURRENT_CALLS)


def test_out_that_is_a_file_or_taken_by_another_batch_is_a_one_line_error(tmp_path: Path) -> None:
    call = _call(tmp_path, "a_call")
    home = tmp_path / "home"
    not_a_folder = tmp_path / "passwd"
    not_a_folder.write_text("root:x:0:0\n", encoding="utf-8")
    done = _copilot("review", str(call), "--out", str(not_a_folder), home=home)
    assert done.returncode != 0 and "internal error" not in done.stderr
    assert "not a folder" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not_a_folder.read_text(encoding="utf-8") == "root:x:0:0\n"

    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with (out / ".batch.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = _copilot("review", str(call), "--out", str(out), home=home)
    assert done.returncode != 0 and "another batch" in done.stderr


# ---- small CLI defects (issue 21) -------------------------------------------------------------------


def test_a_folder_is_reported_as_a_folder_not_as_a_missing_audio_file(tmp_path: Path) -> None:
    from copilot.errors import AudioError
    from copilot.transcription.audio import probe

    folder = tmp_path / "call.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match="is a folder") as raised:
        probe(folder)
    assert "not found" not in str(raised.value)
    with pytest.raises(AudioError, match="not found"):
        probe(tmp_path / "missing.wav")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_json_that_is_a_fifo_or_a_device_is_refused_without_reading_it(tmp_path: Path, kind: str) -> None:
    import os

    if kind == "fifo":
        path = tmp_path / "call.json"
        os.mkfifo(path)  # reading it would block until a writer comes
    else:
        path = tmp_path / "zero.json"
        path.symlink_to("/dev/zero")  # reports 0 bytes, never ends
    done = _copilot("review", str(path), "--json", home=tmp_path / "home")
    assert done.returncode != 0
    assert "not a regular file" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    batch = _copilot(
        "review", str(path), "--out", str(tmp_path / "out"), "--no-progress", home=tmp_path / "home"
    )
    assert batch.returncode != 0 and "not a regular file" in batch.stdout
    assert (tmp_path / "out" / "batch.json").is_file()


def test_store_export_says_when_it_creates_a_folder_and_refuses_a_file_as_folder(tmp_path: Path) -> None:
    target = tmp_path / "new" / "reviews.csv"
    done = _copilot("store", "export", "--format", "csv", "--out", str(target), home=tmp_path / "home")
    assert done.returncode == 0 and f"creating folder {target.parent}" in done.stderr
    assert target.is_file()
    under_a_file = target / "x.csv"
    done = _copilot("store", "export", "--format", "csv", "--out", str(under_a_file), home=tmp_path / "home")
    assert done.returncode != 0 and "is not a folder" in done.stderr
    assert "internal error" not in done.stderr


def test_a_call_with_no_speech_is_stored_as_no_speech_and_not_scored(tmp_path: Path) -> None:
    calls = tmp_path / "in"
    calls.mkdir()
    silent = {"duration": 3600.0, "segments": [{"role": "customer", "start": 1.0, "end": 2.0, "text": " "}]}
    (calls / "silence.json").write_text(json.dumps(silent), encoding="utf-8")
    _call(calls, "spoken", "一")
    home, out = tmp_path / "home", tmp_path / "out"
    done = _copilot("review", str(calls), "--out", str(out), "--no-progress", home=home)
    assert done.returncode == 0, done.stderr
    outcomes = {Path(o["file"]).stem: o for o in json.loads((out / "batch.json").read_text())["outcomes"]}
    assert outcomes["silence"]["status"] == "reviewed" and outcomes["silence"]["reason"] == "no speech"
    assert outcomes["silence"]["score"] is None and outcomes["spoken"]["score"] is not None
    rows = (out / "reviews.csv").read_text(encoding="utf-8")
    assert ",no speech," in rows
    listing = _copilot("store", "search", home=home)
    assert "no speech" in listing.stdout
    single = _copilot("review", str(calls / "silence.json"), "--json", home=home)
    assert json.loads(single.stdout)["score"] is None


def test_privacy_redact_kinds_chooses_what_review_masks(tmp_path: Path) -> None:
    call = _call(tmp_path, "kinds", "我叫张伟，电话13812345678")
    config = tmp_path / "only-mobile.toml"
    config.write_text('[privacy]\nredact_kinds = ["mobile"]\n', encoding="utf-8")
    done = _copilot("--config", str(config), "review", str(call), "--json", home=tmp_path / "home")
    text = "".join(s["text"] for s in json.loads(done.stdout)["segments"])
    assert "张伟" in text and "13812345678" not in text and MASKS["mobile"] in text
    config.write_text('[privacy]\nredact_kinds = ["mobile", "passport"]\n', encoding="utf-8")
    refused = _copilot("--config", str(config), "review", str(call), "--json", home=tmp_path / "home")
    assert refused.returncode != 0 and "passport" in refused.stderr
