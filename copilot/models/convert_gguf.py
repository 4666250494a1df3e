"""Convert a GGUF chat model (Qwen2.5-Coder Q4_K_M) into a plain bf16 transformers folder.

Loading a GGUF through transformers dequantises every tensor on each start (tens of seconds, ~4 GB
peak) and ``save_pretrained`` refuses a GGUF-loaded model. So the conversion happens once: read the
config and the tokenizer (with its chat template) from the GGUF metadata, build the model skeleton on
the ``meta`` device (no memory, no random init), dequantise the tensors straight to bf16 into it, and
save a normal folder that later loads in seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from copilot.errors import ModelError, install_hint

GGUF_NAME = "model.gguf"
WEIGHTS_NAME = "model.safetensors"
# One file whatever the model size (1.5B in bf16 is ~3.5 GB): the manifest hashes it as one artefact.
MAX_SHARD_SIZE = "20GB"
# Chat models end a turn with <|im_end|>; <|endoftext|> ends a document. Either must stop generation.
END_TOKENS = ("<|im_end|>", "<|endoftext|>")


def convert(source_dir: Path, out_dir: Path, *, log: Callable[[str], None] | None = None) -> Path:
    """Write config, bf16 ``model.safetensors``, tokenizer and generation config into ``out_dir``.

    ``source_dir / "model.gguf"`` is the assembled, checksum-verified file. Returns ``out_dir``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local; never reach for a hub
    try:
        import gguf  # noqa: F401  (transformers reads the file with it)
        import torch
        import transformers
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    except ImportError as e:
        raise ModelError(
            f"converting a GGUF model needs torch, transformers and gguf; {install_hint('gguf')}"
        ) from e
    say = log or (lambda _msg: None)
    gguf_path = Path(source_dir) / GGUF_NAME
    if not gguf_path.is_file():
        raise ModelError(f"{gguf_path} is missing: assemble the model before converting it")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    try:
        config = transformers.AutoConfig.from_pretrained(str(source_dir), gguf_file=GGUF_NAME)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(source_dir), gguf_file=GGUF_NAME)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"cannot read the metadata of {gguf_path}: {e}") from e
    if not tokenizer.chat_template:
        raise ModelError(f"{gguf_path} has no chat template: it is not an instruction-tuned chat model")
    say(f"metadata read in {time.monotonic() - started:.1f} s")

    # The skeleton only provides parameter names and shapes; the tensors are assigned below.
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    try:
        parsed = load_gguf_checkpoint(
            str(gguf_path), return_tensors=True, model_to_load=model, torch_dtype=torch.bfloat16
        )
    except (ValueError, NotImplementedError) as e:
        raise ModelError(f"cannot dequantise {gguf_path}: {e}") from e
    state_dict = parsed["tensors"]
    del parsed
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as e:  # missing or unexpected tensors: the file does not match its config
        raise ModelError(f"the tensors of {gguf_path} do not match its config: {e}") from e
    del state_dict
    if config.tie_word_embeddings:
        model.tie_weights()
    say(f"dequantised to bf16 in {time.monotonic() - started:.1f} s")

    end_ids = [tokenizer.convert_tokens_to_ids(t) for t in END_TOKENS if t in tokenizer.get_vocab()]
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=end_ids or config.eos_token_id,
        pad_token_id=config.pad_token_id if config.pad_token_id is not None else tokenizer.pad_token_id,
        do_sample=False,  # the product decodes greedily: suggestions must be reproducible
    )
    model.save_pretrained(str(out_dir), max_shard_size=MAX_SHARD_SIZE)
    tokenizer.save_pretrained(str(out_dir))
    if not (out_dir / WEIGHTS_NAME).is_file():
        raise ModelError(f"conversion of {gguf_path} did not produce {out_dir / WEIGHTS_NAME}")
    say(f"saved to {out_dir} in {time.monotonic() - started:.1f} s")
    return out_dir
