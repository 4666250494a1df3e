"""Load time, memory, first-token latency and throughput of the local LLM, with and without the
reused system-prefix KV cache, and with and without prompt lookup decoding, on a typical suggestion prompt
(~200 tokens, 2-sentence reply).

Run after ``copilot models install`` (or point ``--model`` at any converted folder):

    .venv/bin/python eval/bench_llm.py [--model qwen2.5-coder-0.5b] [--runs 3] [--dtype auto|float32]
        [--prompt-lookup 16]

One process, one model: run it again for another model so resident memory is not shared.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from copilot.config import LlmConfig
from copilot.suggest.llm import ChatMessage, TransformersGenerator

MAX_NEW_TOKENS = 64  # the product's default cap (LlmConfig.max_new_tokens)

# Fixed for every suggestion: role, rules and style. This is the prefix whose KV cache is reused.
SYSTEM = ChatMessage(
    "system",
    "你是电商售后客服坐席的实时助手。根据客户刚说的话和手册条款，给坐席写出下一句可以直接说出口的回复。"
    "要求：使用简体中文；语气礼貌、耐心、专业；先回应客户的情绪，再说明处理办法；"
    "不超过两句话；不得承诺手册没有写的赔偿、时限或政策；不得索要客户的完整银行卡号或密码；"
    "需要核实信息时只询问订单号或手机号后四位。只输出回复本身，不要解释。",
)
# Changes every turn: the customer's words and the retrieved handbook passage.
USER = ChatMessage(
    "user",
    "客户刚才说：「我上周买的电水壶用了两次就不加热了，你们到底管不管？我已经打了三次电话了，"
    "每次都说会有人联系我，结果根本没人理！」\n"
    "相关手册条款：商品签收后七日内出现非人为质量问题，可申请退货或换货；十五日内可申请换货。"
    "坐席应先致歉，确认订单信息，并告知客户处理时限为一到三个工作日。\n"
    "请写出坐席接下来要说的话。",
)


def rss_mb() -> float:
    """Current resident set size of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_once(generator: TransformersGenerator, reuse: bool) -> tuple[float, float, float, float, int, str]:
    """(first-token s, first-token CPU s, total s, total CPU s, forward passes, text) of one suggestion.

    CPU seconds (all threads of this process) show the work saved even on a machine whose cores are
    shared with other jobs, where wall-clock latency mostly measures the neighbours.
    """
    forwards = [0]
    original = generator.model.forward

    def counting(*args: object, **kwargs: object) -> object:
        forwards[0] += 1  # the first one also prefills; with prompt lookup one may yield several tokens
        return original(*args, **kwargs)

    generator.model.forward = counting
    try:
        started = time.perf_counter()
        cpu_started = time.process_time()
        first = first_cpu = float("nan")
        pieces: list[str] = []
        for piece in generator.stream([SYSTEM, USER], max_new_tokens=MAX_NEW_TOKENS, reuse_prefix=reuse):
            if not pieces:
                first = time.perf_counter() - started
                first_cpu = time.process_time() - cpu_started
            pieces.append(piece)
        total = time.perf_counter() - started
        total_cpu = time.process_time() - cpu_started
    finally:
        del generator.model.forward  # back to the class method
    return first, first_cpu, total, total_cpu, forwards[0], "".join(pieces)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=LlmConfig().model, help="packaged name or converted folder")
    parser.add_argument("--runs", type=int, default=3, help="timed suggestions per mode")
    parser.add_argument("--threads", type=int, default=LlmConfig().threads)
    parser.add_argument("--dtype", default="auto", help="auto (bf16 as converted) or float32")
    parser.add_argument(
        "--quantize", choices=("none", "int8"), default=LlmConfig().quantize, help="[llm] quantize"
    )
    parser.add_argument(
        "--prompt-lookup",
        type=int,
        default=LlmConfig().prompt_lookup,
        help="[llm] prompt_lookup: draft tokens per forward pass (0: off; the last row always runs with 0)",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    config = LlmConfig(
        model=args.model, threads=args.threads, quantize=args.quantize, prompt_lookup=args.prompt_lookup
    )
    generator = TransformersGenerator(config, dtype=args.dtype)
    load = time.perf_counter() - started
    prompt_tokens = len(generator.encode([SYSTEM, USER]))
    prefix_tokens = len(generator._prefix_ids([SYSTEM, USER]))
    print(
        f"model {args.model}  dtype {generator.model.dtype}  quantize {args.quantize}  threads {args.threads}"
    )
    print(f"load {load:.1f} s  RSS {rss_mb():.0f} MB (safetensors are mapped lazily: see RSS after the runs)")
    print(f"prompt {prompt_tokens} tokens (system prefix {prefix_tokens}), cap {MAX_NEW_TOKENS} new tokens")

    run_once(generator, reuse=False)  # warm-up: first-call allocations and kernel selection
    started = time.perf_counter()
    generator._prefix_cache(generator._prefix_ids([SYSTEM, USER]))
    print(f"system prefix prefill (once per prompt variant) {time.perf_counter() - started:.2f} s")

    modes = [(False, args.prompt_lookup), (True, args.prompt_lookup)]
    if args.prompt_lookup:
        modes.append((True, 0))  # what prompt lookup saves
    for reuse, lookup in modes:
        generator.config = dataclasses.replace(config, prompt_lookup=lookup)
        firsts: list[float] = []
        totals: list[float] = []
        cpus: list[float] = []
        total_cpus: list[float] = []
        rates: list[float] = []
        passes: list[int] = []
        text = ""
        for _ in range(args.runs):
            first, first_cpu, total, total_cpu, forwards, text = run_once(generator, reuse)
            tokens = len(generator.tokenizer(text)["input_ids"]) + 1  # + the end-of-turn token
            firsts.append(first)
            cpus.append(first_cpu)
            totals.append(total)
            total_cpus.append(total_cpu)
            rates.append((tokens - 1) / max(1e-9, total - first))  # decode speed after the first token
            passes.append(forwards)
        label = f"{'with' if reuse else 'without'} prefix cache, prompt lookup {lookup:2d}"
        print(
            f"{label}: first token {statistics.median(firsts):.2f} s ({statistics.median(cpus):.2f} CPU s)  "
            f"total {statistics.median(totals):.2f} s ({statistics.median(total_cpus):.2f} CPU s)  "
            f"decode {statistics.median(rates):.1f} tokens/s  {statistics.median(passes)} forward passes "
            f"for {tokens} tokens  (median of {args.runs})"
        )
    print(f"reply: {text}")
    print(
        f"RSS {rss_mb():.0f} MB after the runs; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
