"""The generation protocol: scripted fake, the transformers generator on a tiny GGUF-converted model
(prefix-cache correctness, cancellation that stops compute), and the packaged Qwen on Chinese."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Generator as PyGenerator
from pathlib import Path
from typing import cast

import pytest

from copilot.config import LlmConfig
from copilot.errors import ModelError
from copilot.models.convert_gguf import GGUF_NAME, convert
from copilot.suggest.llm import (
    ChatMessage,
    Generator,
    Lookup,
    TransformersGenerator,
    load_generator,
    lookup_draft,
    system_prefix,
)
from tests.fakes_llm import ScriptedGenerator, write_tiny_gguf

SYSTEM = ChatMessage("system", "您好，请问有什么可以帮您？")
USER = ChatMessage("user", "请稍等，我帮您查询一下订单。")
CAP = 24  # tokens
LONG_CAP = 400  # tokens: far more than a stopped stream may compute, within the tiny context


def _generation_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "llm-generate" and t.is_alive()]


# --- the scripted fake ---------------------------------------------------------------------------


def test_scripted_generator_is_a_generator_and_follows_its_script() -> None:
    fake = ScriptedGenerator(["请稍等。", "好的，马上处理。"])
    generator: Generator = fake
    assert "".join(generator.stream([USER], max_new_tokens=CAP)) == "请稍等。"
    assert "".join(generator.stream([USER], max_new_tokens=CAP)) == "好的，马上处理。"
    assert "".join(generator.stream([USER], max_new_tokens=3)) == "好的，"  # last reply repeats, capped
    assert fake.calls[0] == (USER,)


def test_scripted_generator_honours_stop() -> None:
    fake = ScriptedGenerator(["非常抱歉给您带来不便。"])
    stop = threading.Event()
    pieces = []
    for piece in fake.stream([USER], max_new_tokens=CAP, stop=stop):
        pieces.append(piece)
        if len(pieces) == 2:
            stop.set()
    assert pieces == ["非", "常"]
    assert fake.pieces_emitted == [2]


# --- pure helpers ----------------------------------------------------------------------------------


def test_system_prefix_takes_only_leading_system_messages() -> None:
    later_system = ChatMessage("system", "later")
    assert system_prefix([SYSTEM, USER, later_system]) == (SYSTEM,)
    assert system_prefix([USER, SYSTEM]) == ()


def test_lookup_draft_copies_what_followed_the_longest_matching_tail() -> None:
    ids = [2, 3, 6, 1, 2, 3, 4, 5, 1, 2, 3]
    assert lookup_draft(ids, Lookup(tokens=2), limit=10) == [4, 5]  # (1, 2, 3) beats the earlier (2, 3)
    assert lookup_draft(ids, Lookup(tokens=2, ngram=2), limit=10) == [6, 1]  # the first (2, 3)
    assert lookup_draft(ids, Lookup(tokens=2, ngram=2, search_from=1), limit=10) == [4, 5]
    assert lookup_draft(ids, Lookup(tokens=10), limit=3) == [4, 5, 1]  # capped by the caller's limit
    assert lookup_draft([1, 2, 3, 4], Lookup(tokens=5), limit=10) == []  # the tail occurs nowhere else
    assert lookup_draft(ids, Lookup(tokens=5), limit=0) == []


def test_disabled_llm_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="disabled"):
        load_generator(LlmConfig(enabled=False))


# --- transformers generator on a tiny model ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory: pytest.TempPathFactory) -> TransformersGenerator:
    source = tmp_path_factory.mktemp("tiny_gguf")
    write_tiny_gguf(source / GGUF_NAME)
    folder = convert(source, tmp_path_factory.mktemp("tiny_hf"))
    return TransformersGenerator(LlmConfig(model=str(folder), threads=1))


def _count_forwards(generator: TransformersGenerator, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = generator.model.forward

    def counting(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(generator.model, "forward", counting)
    return calls


def test_streams_up_to_the_cap(tiny_generator: TransformersGenerator) -> None:
    pieces = list(tiny_generator.stream([SYSTEM, USER], max_new_tokens=CAP))
    assert 0 < len(pieces) <= CAP
    assert not _generation_threads()


def test_prefix_cache_gives_the_same_greedy_output(tiny_generator: TransformersGenerator) -> None:
    plain = "".join(tiny_generator.stream([SYSTEM, USER], max_new_tokens=CAP, reuse_prefix=False))
    cached_first = "".join(tiny_generator.stream([SYSTEM, USER], max_new_tokens=CAP))
    cached_again = "".join(tiny_generator.stream([SYSTEM, USER], max_new_tokens=CAP))
    other_user = ChatMessage("user", "您的退款已经提交")
    other = "".join(tiny_generator.stream([SYSTEM, other_user], max_new_tokens=CAP))
    other_plain = "".join(tiny_generator.stream([SYSTEM, other_user], max_new_tokens=CAP, reuse_prefix=False))
    assert plain and plain == cached_first == cached_again
    assert other == other_plain


def test_prompt_lookup_decodes_the_same_text_as_generate(
    tiny_generator: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tiny_generator.config.prompt_lookup > 0  # the default path
    forwards = _count_forwards(tiny_generator, monkeypatch)
    lookup = list(tiny_generator.stream([SYSTEM, USER], max_new_tokens=CAP))
    lookup_forwards = forwards[0]
    monkeypatch.setattr(tiny_generator, "config", dataclasses.replace(tiny_generator.config, prompt_lookup=0))
    forwards[0] = 0
    plain = list(tiny_generator.stream([SYSTEM, USER], max_new_tokens=CAP))
    assert "".join(lookup) == "".join(plain)
    assert lookup_forwards < forwards[0]  # the random model repeats prompt tokens: drafts were accepted


def test_prefix_cache_skips_the_system_prompt_prefill(
    tiny_generator: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    list(tiny_generator.stream([SYSTEM, USER], max_new_tokens=1))  # make sure the prefix is cached
    seen: list[int] = []
    original = tiny_generator.model.forward

    def recording(*args: object, input_ids: object = None, **kwargs: object) -> object:
        seen.append(int(input_ids.shape[1]))  # type: ignore[attr-defined]
        return original(*args, input_ids=input_ids, **kwargs)

    monkeypatch.setattr(tiny_generator.model, "forward", recording)
    list(tiny_generator.stream([SYSTEM, USER], max_new_tokens=1))
    full = len(tiny_generator.encode([SYSTEM, USER]))
    prefix = len(tiny_generator._prefix_ids([SYSTEM, USER]))
    assert seen[0] == full - prefix


def test_stop_is_checked_after_every_token(
    tiny_generator: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set the event from inside the third forward pass: no fourth pass may follow."""
    stop = threading.Event()
    calls = [0]
    original = tiny_generator.model.forward

    def stopping(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == 3:
            stop.set()
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny_generator.model, "forward", stopping)
    pieces = list(tiny_generator.stream([SYSTEM, USER], max_new_tokens=CAP, stop=stop))
    assert calls[0] == 3
    assert len(pieces) <= 3
    assert not _generation_threads()


def test_stop_set_by_the_consumer_ends_the_stream_and_the_thread(
    tiny_generator: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwards = _count_forwards(tiny_generator, monkeypatch)
    stop = threading.Event()
    pieces = []
    for piece in tiny_generator.stream([SYSTEM, USER], max_new_tokens=LONG_CAP, stop=stop):
        pieces.append(piece)
        if len(pieces) == 2:
            stop.set()  # a new customer turn arrived
    assert len(pieces) == 2
    assert 2 <= forwards[0] < LONG_CAP // 2  # the model stopped too, not just the output
    assert not _generation_threads()


def test_abandoning_the_stream_stops_the_compute(
    tiny_generator: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwards = _count_forwards(tiny_generator, monkeypatch)
    stream = cast(
        PyGenerator[str, None, None], tiny_generator.stream([SYSTEM, USER], max_new_tokens=LONG_CAP)
    )
    next(stream)
    stream.close()  # e.g. the session dropped the suggestion
    assert 1 <= forwards[0] < LONG_CAP // 2
    assert not _generation_threads()


def test_stop_already_set_yields_nothing(tiny_generator: TransformersGenerator) -> None:
    stop = threading.Event()
    stop.set()
    assert list(tiny_generator.stream([SYSTEM, USER], max_new_tokens=CAP, stop=stop)) == []


def test_bad_arguments_are_refused(tiny_generator: TransformersGenerator) -> None:
    with pytest.raises(ValueError):
        list(tiny_generator.stream([USER], max_new_tokens=0))
    with pytest.raises(ValueError):
        list(tiny_generator.stream([], max_new_tokens=CAP))


def test_int8_quantises_every_linear_layer_per_channel_and_keeps_the_embedding_table_compact(
    tiny_generator: TransformersGenerator, tmp_path: Path
) -> None:
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

    model = tiny_generator.model
    quantized = [m for m in model.modules() if isinstance(m, QuantizedLinear)]
    assert quantized and all(m.weight().qscheme() == torch.per_channel_affine for m in quantized)
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    assert isinstance(model.lm_head, QuantizedLinear)  # the LM head too (memory-bound: faster, 385 MB less)
    table = model.get_input_embeddings().weight
    assert table.dtype in (torch.bfloat16, torch.float32)  # bf16 only where that loses nothing

    source = tmp_path / "gguf"
    source.mkdir()
    write_tiny_gguf(source / GGUF_NAME)
    plain = TransformersGenerator(LlmConfig(model=str(convert(source, tmp_path / "hf")), quantize="none"))
    assert not any(isinstance(m, QuantizedLinear) for m in plain.model.modules())
    assert "".join(plain.stream([SYSTEM, USER], max_new_tokens=CAP))  # still generates


def test_unloadable_model_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelError):
        TransformersGenerator(LlmConfig(model=str(tmp_path)))


# --- the packaged model ------------------------------------------------------------------------------

AGENT_SYSTEM = ChatMessage(
    "system", "你是售后客服坐席的助手。请用简体中文、礼貌简洁地给出坐席下一句该说的话。"
)
CJK = re.compile(r"[\u4e00-\u9fff]")
REAL_CAP = 48  # tokens


@pytest.fixture(scope="module")
def qwen(qwen_dir: Path) -> TransformersGenerator:
    return TransformersGenerator(LlmConfig(model=str(qwen_dir)))


def _cjk_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalnum()]
    return sum(bool(CJK.match(ch)) for ch in letters) / max(1, len(letters))


@pytest.mark.real
def test_qwen_answers_politely_in_chinese(qwen: TransformersGenerator) -> None:
    ask = ChatMessage("user", "用一句话礼貌地告诉客户请稍等")
    text = "".join(qwen.stream([AGENT_SYSTEM, ask], max_new_tokens=REAL_CAP))
    assert len(text.strip()) >= 4
    assert _cjk_share(text) >= 0.8, text
    assert len(qwen.tokenizer(text)["input_ids"]) <= REAL_CAP + 2  # re-tokenising may differ slightly
    from torch.ao.nn.quantized.dynamic import Linear as QuantizedLinear

    assert isinstance(qwen.model.model.layers[0].mlp.down_proj, QuantizedLinear)  # the default: int8


@pytest.mark.real
def test_qwen_prefix_cache_matches_a_full_prefill(qwen: TransformersGenerator) -> None:
    ask = ChatMessage("user", "客户说快递三天没到，很着急。坐席下一句怎么说？")
    plain = "".join(qwen.stream([AGENT_SYSTEM, ask], max_new_tokens=16, reuse_prefix=False))
    cached = "".join(qwen.stream([AGENT_SYSTEM, ask], max_new_tokens=16))
    shared = next((i for i, (a, b) in enumerate(zip(plain, cached, strict=False)) if a != b), len(plain))
    assert shared >= 4, (plain, cached)  # bf16 rounding may split the paths late, never at the start


@pytest.mark.real
def test_qwen_stop_ends_generation_early(qwen: TransformersGenerator) -> None:
    ask = ChatMessage("user", "请详细介绍一下售后服务中处理退货退款的完整流程，分步骤说明。")
    stop = threading.Event()
    pieces = []
    for piece in qwen.stream([AGENT_SYSTEM, ask], max_new_tokens=REAL_CAP, stop=stop):
        pieces.append(piece)
        if len(pieces) == 3:
            stop.set()
    assert len(pieces) == 3
    assert len(qwen.tokenizer("".join(pieces))["input_ids"]) < REAL_CAP
    assert not _generation_threads()


# A real suggestion prompt (copilot/suggest/prompt.py) whose reply copies the handbook script.
SCRIPT = "抱歉,由于电话线路问题,我这里听不到您的声音,请您换部电话或者稍后来电,好吗?"
CLAUSE = "无声电话问候语于常规开头语之后,如果没有声音,重复俩次“请问有什么能够帮您?”"


def _suggestion_prompt() -> list[ChatMessage]:
    from copilot.suggest.prompt import suggestion_messages

    return suggestion_messages("喂？喂？有人吗，怎么没声音", SCRIPT, [CLAUSE + SCRIPT], "您")


@pytest.mark.real
def test_qwen_prompt_lookup_streams_the_plain_greedy_reply_in_fewer_passes(
    qwen: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwards = _count_forwards(qwen, monkeypatch)
    lookup = list(qwen.stream(_suggestion_prompt(), max_new_tokens=REAL_CAP))
    lookup_forwards = forwards[0]
    monkeypatch.setattr(qwen, "config", dataclasses.replace(qwen.config, prompt_lookup=0))
    forwards[0] = 0
    plain = list(qwen.stream(_suggestion_prompt(), max_new_tokens=REAL_CAP))
    assert "".join(lookup) == "".join(plain)
    assert _cjk_share("".join(lookup)) >= 0.8
    assert len(lookup) >= 2  # still streamed, several tokens a piece
    assert lookup_forwards * 2 <= forwards[0], (lookup_forwards, forwards[0])


@pytest.mark.real
def test_qwen_prompt_lookup_stops_when_asked(
    qwen: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwards = _count_forwards(qwen, monkeypatch)
    stop = threading.Event()
    pieces = []
    for piece in qwen.stream(_suggestion_prompt(), max_new_tokens=REAL_CAP, stop=stop):
        pieces.append(piece)
        stop.set()  # a new customer turn arrived
    assert len(pieces) == 1
    assert forwards[0] <= 2  # the pass in flight when the stop came may finish; no pass after it
    assert not _generation_threads()
