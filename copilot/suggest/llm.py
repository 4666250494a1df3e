"""Local LLM text generation: a one-method protocol and its transformers implementation.

The suggestion stage asks for a short reply and shows it as it streams. A new customer turn makes the
reply obsolete, so a generation in flight is cancelled through a ``threading.Event`` that a stopping
criterion checks after every token: the model stops computing, not just the output.

Every suggestion starts with the same system prompt, so its KV cache is computed once per distinct
system prompt and copied for each request: only the changing dialogue is prefilled.

Replies mostly copy runs of the handbook script that is in the prompt, so decoding drafts the tokens that
followed the reply's last few tokens in the prompt and checks the whole draft in one forward pass (prompt
lookup decoding): every accepted draft token is a forward pass saved, and the output is still the model's
own greedy choice at every position.
"""

from __future__ import annotations

import copy
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from copilot.config import LlmConfig
from copilot.errors import ModelError, install_hint

ChatRole = Literal["system", "user", "assistant"]
PREFIX_CACHE_SLOTS = 4  # distinct system prompts whose KV cache is kept (one per prompt variant in use)
JOIN_TIMEOUT = 60.0  # seconds to wait for the generation thread after the stream ends or is abandoned
LOOKUP_NGRAM = 3  # longest tail of the reply looked up in the prompt (shorter ones are tried next)


@dataclass(frozen=True)
class ChatMessage:
    role: ChatRole
    content: str


class Generator(Protocol):
    """Streams the assistant's reply to a chat, piece by piece."""

    name: str

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int,
        stop: threading.Event | None = None,
    ) -> Iterator[str]: ...


def _as_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def system_prefix(messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
    """The leading system message(s): the part of a prompt that repeats between requests."""
    prefix: list[ChatMessage] = []
    for message in messages:
        if message.role != "system":
            break
        prefix.append(message)
    return tuple(prefix)


class _EventCriteria:
    """A transformers StoppingCriteria that ends generation once any of its events is set."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class TransformersGenerator:
    """Greedy decoding with a local transformers causal LM on CPU.

    Safe to share between sessions: the model is read-only and each request works on its own copy
    of the cached system prefix.
    """

    def __init__(self, config: LlmConfig, *, dtype: str = "auto") -> None:
        # A packaged model is local; a hub id only loads for a user who sets HF_HUB_OFFLINE=0.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import torch
            import transformers
        except ImportError as e:
            raise ModelError(
                f"the local LLM needs torch and transformers; {install_hint('transformers')}"
            ) from e
        from copilot.models.provision import resolve

        self.name = config.model
        self.config = config
        location = resolve(config.model)
        torch.set_num_threads(config.threads)
        self.tokenizer: Any
        self.model: Any
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(location)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                location, dtype=dtype if dtype == "auto" else getattr(torch, dtype)
            )
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot load the LLM {config.model!r} from {location}: {e}") from e
        if not self.tokenizer.chat_template:
            raise ModelError(f"the LLM {config.model!r} has no chat template: use an instruction-tuned model")
        self.model.eval()
        if config.quantize == "int8":
            self.model = quantize_int8(self.model)
        compact_input_embeddings(self.model)
        self._lock = threading.Lock()
        self._prefix_caches: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def encode(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Token ids of the chat, ending with the assistant's turn opener."""
        text = self.tokenizer.apply_chat_template(
            _as_dicts(messages), add_generation_prompt=True, tokenize=False
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prefix_ids(self, messages: Sequence[ChatMessage]) -> tuple[int, ...]:
        prefix = system_prefix(messages)
        if not prefix:
            return ()
        text = self.tokenizer.apply_chat_template(
            _as_dicts(prefix), add_generation_prompt=False, tokenize=False
        )
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _eos_ids(self) -> frozenset[int]:
        """The token ids that end a reply (the generation config may list several)."""
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return frozenset([eos] if isinstance(eos, int) else eos)

    def _prefix_cache(self, prefix_ids: tuple[int, ...]) -> Any:
        """The prefilled KV cache of a system prefix (computed on first use, then kept)."""
        import torch
        from transformers import DynamicCache

        with self._lock:
            cached = self._prefix_caches.get(prefix_ids)
            if cached is not None:
                self._prefix_caches.move_to_end(prefix_ids)
                return cached
        cache = DynamicCache(config=self.model.config)
        with torch.inference_mode():
            self.model(input_ids=torch.tensor([prefix_ids]), past_key_values=cache, use_cache=True)
        with self._lock:
            self._prefix_caches[prefix_ids] = cache
            while len(self._prefix_caches) > PREFIX_CACHE_SLOTS:
                self._prefix_caches.popitem(last=False)
        return cache

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_new_tokens: int,
        stop: threading.Event | None = None,
        reuse_prefix: bool = True,
    ) -> Iterator[str]:
        """Yield the reply as text pieces (about one per token) until done, capped, or ``stop`` is set."""
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if not messages:
            raise ValueError("a chat needs at least one message")
        ids = self.encode(messages)
        prefix_ids = self._prefix_ids(messages)
        # Reuse only when the prefix tokenises identically inside the full prompt, and leave at least one
        # token to prefill (decoding needs a position to predict from).
        reusable = prefix_ids and tuple(ids[: len(prefix_ids)]) == prefix_ids and len(ids) > len(prefix_ids)
        past = copy.deepcopy(self._prefix_cache(prefix_ids)) if reuse_prefix and reusable else None

        abandoned = threading.Event()  # set when the consumer leaves the loop early
        events = (abandoned, stop) if stop is not None else (abandoned,)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def decode() -> None:
            if self.config.prompt_lookup > 0:
                lookup_decode(
                    self.model,
                    ids,
                    past,
                    Lookup(self.config.prompt_lookup, search_from=len(prefix_ids)),
                    max_new_tokens=max_new_tokens,
                    eos=self._eos_ids(),
                    streamer=streamer,
                    stopped=lambda: any(event.is_set() for event in events),
                )
                return
            input_ids = torch.tensor([ids])
            self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                past_key_values=past,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([_EventCriteria(*events)]),
            )

        def work() -> None:
            try:
                with torch.inference_mode():
                    decode()
            except Exception as e:  # surfaced in the consumer's thread below
                failure.append(e)
                streamer.end()

        thread = threading.Thread(target=work, name="llm-generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if stop is not None and stop.is_set():
                    break
                if piece:
                    yield piece
        finally:
            abandoned.set()
            thread.join(JOIN_TIMEOUT)
        if failure:
            raise ModelError(f"generation with {self.name} failed: {failure[0]}") from failure[0]


@dataclass(frozen=True)
class Lookup:
    """Prompt lookup: draft up to ``tokens`` tokens per step from ``ids[search_from:]`` (the system prompt's
    rules are not reply material) and the reply so far."""

    tokens: int
    search_from: int = 0
    ngram: int = LOOKUP_NGRAM


def lookup_draft(ids: Sequence[int], lookup: Lookup, limit: int) -> list[int]:
    """The tokens that followed the first earlier occurrence of ``ids``' last n-gram (longest n first), at most
    ``min(lookup.tokens, limit)`` of them; empty when nothing matches."""
    count = min(lookup.tokens, limit)
    if count < 1:
        return []
    end = len(ids)
    for n in range(min(lookup.ngram, end - 1), 0, -1):
        tail = list(ids[end - n :])
        for start in range(lookup.search_from, end - n):
            if ids[start] == tail[0] and list(ids[start : start + n]) == tail:
                return list(ids[start + n : min(start + n + count, end)])
    return []


def _accepted(draft: Sequence[int], picks: Sequence[int]) -> int:
    """How many leading draft tokens the model would have picked itself."""
    matched = 0
    while matched < len(draft) and draft[matched] == picks[matched]:
        matched += 1
    return matched


def lookup_decode(
    model: Any,
    ids: Sequence[int],
    past: Any,
    lookup: Lookup,
    *,
    max_new_tokens: int,
    eos: frozenset[int],
    streamer: Any,
    stopped: Callable[[], bool],
) -> None:
    """Greedy decoding of ``ids`` (whose first tokens may already be in the cache ``past``) with prompt lookup.

    Each forward pass feeds the last picked token plus a draft copied from the prompt, and keeps the draft
    tokens up to the first one the model would not have picked, plus the model's own pick after them.
    ``generate(prompt_lookup_num_tokens=...)`` does the same but, in transformers 5.23, feeds the whole
    prompt again on top of a pre-filled cache (garbage output), hence this loop. ``stopped`` is checked
    after every forward pass, like a stopping criterion.
    """
    import torch
    from transformers import DynamicCache

    cache = past if past is not None else DynamicCache(config=model.config)
    tokens = list(ids)
    streamer.put(torch.tensor(tokens))  # the prompt first, as generate does (the streamer skips it)
    pending = tokens[cache.get_seq_length() :]  # prompt tokens not in the cache yet, then the last pick
    draft: list[int] = []
    produced = 0
    while True:
        logits = model(
            input_ids=torch.tensor([pending + draft]),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=len(draft) + 1,  # the prompt's other positions need no logits
        ).logits
        picks = logits[0].argmax(dim=-1).tolist()
        matched = _accepted(draft, picks)
        if matched < len(draft):
            cache.crop(matched - len(draft))  # forget the rejected draft tokens
        new = picks[: min(matched + 1, max_new_tokens - produced)]
        ended = next((i for i, token in enumerate(new) if token in eos), None)
        if ended is not None:
            new = new[: ended + 1]
        tokens += new
        produced += len(new)
        streamer.put(torch.tensor(new))
        if ended is not None or produced >= max_new_tokens or stopped():
            break
        pending = [new[-1]]
        draft = lookup_draft(tokens, lookup, max_new_tokens - produced - 1)
    streamer.end()


def quantize_int8(model: Any) -> Any:
    """``model`` with its transformer blocks' ``nn.Linear`` layers int8 dynamic-quantised, per channel.

    torch's eager dynamic quantisation runs fbgemm int8 GEMMs on CPU; decoding is memory-bound, so
    smaller weights mean more tokens a second. Measured on 16 suggestion prompts (0.5B, 2 cores):
    per-tensor scales everywhere were fastest but the guard then rejected 43% of rewrites (garbled
    text); per-channel scales keep quality. The LM head (151,936 x 896, 545 MB in float32) is quantised
    per channel too: run side by side on 4 prompts x 2 rounds it took first token 1.23 -> 0.41 s and done
    5.2 -> 2.5 s (p50, loaded machine), 385 MB less resident, 6 of 8 replies identical. torch marks the
    eager API deprecated in favour of torchao, but torchao 0.18's int8 configs ran ~5x slower than
    float32 on this CPU, so it stays.
    """
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    if model.dtype != torch.float32:  # fbgemm quantises float32 weights
        model = model.float()
    layers = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*(torchao|quantize_per_tensor|deprecated).*")
        # In place: the default deep-copies the float32 model first (2.5 GB more at load for the 0.5B).
        return quantize_dynamic(model, layers, dtype=torch.qint8, inplace=True)


def compact_input_embeddings(model: Any) -> None:
    """Keep the input embedding table in bfloat16 when that loses nothing (the packaged weights are
    bfloat16, upcast to float32 at load): a lookup picks a few rows, upcast per call. 272 MB less resident
    for the 0.5B's 151,936 x 896 table, same replies bit for bit."""
    import torch

    table = model.get_input_embeddings()
    if not isinstance(table, torch.nn.Embedding) or table.weight.dtype != torch.float32:
        return
    compact = table.weight.detach().to(torch.bfloat16)
    if not torch.equal(compact.float(), table.weight):
        return  # real float32 values: rounding them would change the model
    model.set_input_embeddings(_Bf16Embedding(compact, table.padding_idx))


class _Bf16Embedding:  # built as a torch module lazily: torch is imported only with the LLM
    def __new__(cls, weight: Any, padding_idx: int | None) -> Any:
        import torch

        class Bf16Embedding(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.weight = torch.nn.Parameter(weight, requires_grad=False)
                self.padding_idx = padding_idx

            def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
                return torch.nn.functional.embedding(input_ids, self.weight).float()

        return Bf16Embedding()


def load_generator(config: LlmConfig) -> Generator:
    """The configured generator, loaded once (raises ModelError if disabled or unusable)."""
    if not config.enabled:
        raise ModelError("the LLM is disabled in the configuration (llm.enabled = false)")
    return TransformersGenerator(config, dtype=config.dtype)
