"""Fakes for the LLM path.

``ScriptedGenerator`` satisfies :class:`copilot.suggest.llm.Generator` without a model: each call streams the
next scripted reply one character at a time (a character stands for a token), honours the token cap
and the stop event, and records the messages it was given.

``write_tiny_gguf`` writes a real (random, 2-layer) Qwen2 GGUF with a byte-level BPE tokenizer and a
chat template, so the converter and the transformers generator can be tested in seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.suggest.llm import ChatMessage


@dataclass
class ScriptedGenerator:
    replies: Sequence[str]  # one per call; the last one repeats once the script runs out
    name: str = "scripted"
    calls: list[tuple[ChatMessage, ...]] = field(default_factory=list)
    pieces_emitted: list[int] = field(default_factory=list)  # per call, how many pieces were streamed

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        index = len(self.calls)
        self.calls.append(tuple(messages))
        self.pieces_emitted.append(0)
        reply = self.replies[min(index, len(self.replies) - 1)] if self.replies else ""
        for piece in reply[:max_new_tokens]:
            if stop is not None and stop.is_set():
                return
            self.pieces_emitted[index] += 1
            yield piece


# A tiny Qwen2: small enough to build, convert and run in a couple of seconds.
TINY_HIDDEN = 64
TINY_LAYERS = 2
TINY_HEADS = 4
TINY_KV_HEADS = 2
TINY_FFN = 128
TINY_CONTEXT = 512
TINY_ROPE_THETA = 10000.0
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TINY_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
TINY_CORPUS = (
    "您好，请问有什么可以帮您？",
    "请稍等，我帮您查询一下订单。",
    "非常抱歉给您带来不便，我们会尽快处理。",
    "您的退款已经提交，预计三个工作日到账。",
    "感谢您的耐心等待，还有其他问题吗？",
    "hello, the order number is 12345",
)


def _is_cjk(text: str) -> bool:
    return bool(text) and all("\u4e00" <= ch <= "\u9fff" for ch in text)


def _tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(TINY_CORPUS) * 4, trainer=trainer)
    return tokenizer


def write_tiny_gguf(path: Path, *, seed: int = 0) -> dict[str, Any]:
    """Write a random tiny Qwen2 chat model as GGUF (F32 tensors, Q8_0 for the FFN); return its HF tensors.

    The returned state dict holds, per transformers parameter name, the values the GGUF encodes (after
    the Q8_0 round trip), so a test can compare a conversion against them.
    """
    import json

    import numpy as np
    import torch
    from gguf import MODEL_ARCH, GGMLQuantizationType, GGUFWriter, TokenType, get_tensor_name_map
    from gguf.quants import dequantize, quantize
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = _tiny_tokenizer()
    vocab = tokenizer.get_vocab()
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    merges = [" ".join(pair) for pair in json.loads(tokenizer.to_str())["model"]["merges"]]
    special = {vocab[t] for t in SPECIAL_TOKENS}

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokens),
        hidden_size=TINY_HIDDEN,
        intermediate_size=TINY_FFN,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=TINY_HEADS,
        num_key_value_heads=TINY_KV_HEADS,
        max_position_embeddings=TINY_CONTEXT,
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": TINY_ROPE_THETA},
    )
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():  # only whole Chinese characters can win a greedy step: output streams readably
        for index in range(len(tokens)):
            if not _is_cjk(tokenizer.decode([index])):
                model.lm_head.weight[index].zero_()
    name_map = get_tensor_name_map(MODEL_ARCH.QWEN2, TINY_LAYERS)

    writer = GGUFWriter(str(path), "qwen2")
    writer.add_name("tiny qwen2 test model")
    writer.add_block_count(TINY_LAYERS)
    writer.add_context_length(TINY_CONTEXT)
    writer.add_embedding_length(TINY_HIDDEN)
    writer.add_feed_forward_length(TINY_FFN)
    writer.add_head_count(TINY_HEADS)
    writer.add_head_count_kv(TINY_KV_HEADS)
    writer.add_rope_freq_base(TINY_ROPE_THETA)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [TokenType.CONTROL if i in special else TokenType.NORMAL for i in range(len(tokens))]
    )
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab["<|endoftext|>"])
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_pad_token_id(vocab["<|endoftext|>"])
    writer.add_chat_template(TINY_CHAT_TEMPLATE)

    expected: dict[str, Any] = {}
    for hf_name, tensor in model.state_dict().items():
        stem, _, suffix = hf_name.rpartition(".")
        gguf_name = name_map.get_name(stem)
        assert gguf_name is not None, hf_name
        data = tensor.detach().float().numpy()
        if ".mlp." in hf_name:  # exercise a real dequantisation on part of the model
            packed = quantize(data, GGMLQuantizationType.Q8_0)
            writer.add_tensor(f"{gguf_name}.{suffix}", packed, raw_dtype=GGMLQuantizationType.Q8_0)
            data = dequantize(packed, GGMLQuantizationType.Q8_0).reshape(data.shape)
        else:
            writer.add_tensor(f"{gguf_name}.{suffix}", data)
        expected[hf_name] = torch.from_numpy(np.ascontiguousarray(data))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected
