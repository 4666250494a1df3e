"""Could the local LLM rerank what retrieval finds for real customer turns? (issue #18)

An experiment, not a product path. On the labelled real turns of ``copilot eval realsuggest``
(``eval/realdata/suggest_turns.tsv``, read with the dialogues in ``../shared/realdata``) it takes the product's
``K`` best passages for each turn, as ``copilot search`` finds them, and orders them again by the LLM:

* ``choice``: one prompt lists the K passages as A, B, C...; each passage scores the log-probability of its
  letter as the answer to "which clause should guide the agent now";
* ``yes-no``: one prompt per passage; it scores log P(是) - log P(否) for "should the agent answer by this clause".

Either score is added to ``-prior * log(rank)``, so that the retriever's own order breaks the LLM's near-ties.
Printed per part and mode: recall@3 and MRR ("none" counted as the suite counts it) before and after, the
ceiling (the share of turns whose fitting passage is among the K at all) and the seconds per turn.

    .venv/bin/python eval/bench_llm_rerank.py --part tune                 # choose here
    .venv/bin/python eval/bench_llm_rerank.py --part test --modes choice
    .venv/bin/python eval/bench_llm_rerank.py --depth 50 --modes          # the ceiling alone, no LLM
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from copilot.config import load_config
from copilot.evaluation import realdata
from copilot.evaluation.realsuggest import RECALL_AT, TurnCase, load_cases, retrieval_rank
from copilot.knowledge.retrieval import assess, open_retriever
from copilot.models.provision import runtime_path
from copilot.types import Passage

MODES = ("choice", "yes-no")
SYSTEM = "你是客服质检专家。"
CLAUSE_CHARS = 60  # each passage as its heading and its first words: the prompt stays short enough for CPU


def clause(passage: Passage) -> str:
    return f"{passage.section.split(' > ')[-1]}:{passage.text.replace(chr(10), ' ')[:CLAUSE_CHARS]}"


class Scorer:
    """The LLM as a judge of (turn, passage) pairs: one forward pass per prompt, no generation."""

    def __init__(self, model: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(os.cpu_count() or 1)
        path = runtime_path(model)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.yes, self.no = (self.tokenizer.encode(word)[0] for word in ("是", "否"))

    def _prompt(self, question: str) -> str:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def _last_logprobs(self, prompts: list[str]) -> Any:
        with self.torch.no_grad():
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
            return self.torch.log_softmax(self.model(**batch).logits[:, -1, :], dim=-1)

    def choice(self, turn: str, passages: Sequence[Passage]) -> list[float]:
        letters = [chr(ord("A") + i) for i in range(len(passages))]
        options = "\n".join(f"{letter}. {clause(p)}" for letter, p in zip(letters, passages, strict=True))
        question = (
            f"顾客在电话中说:「{turn}」\n下面哪条手册条款最适合指导客服此刻的回应?\n{options}\n只回答字母。"
        )
        logprobs = self._last_logprobs([self._prompt(question)])[0]
        return [float(logprobs[self.tokenizer.encode(letter)[0]]) for letter in letters]

    def yes_no(self, turn: str, passages: Sequence[Passage]) -> list[float]:
        prompts = [
            self._prompt(
                f"顾客在电话中说:「{turn}」\n手册条款:{clause(p)}\n客服此时应按这条条款回应吗?只回答是或否。"
            )
            for p in passages
        ]
        logprobs = self._last_logprobs(prompts)
        return [float(v) for v in logprobs[:, self.yes] - logprobs[:, self.no]]


def summary(ranks: Sequence[int | None]) -> tuple[float, float]:
    n = len(ranks) or 1
    return sum(1 for r in ranks if r is not None and r <= RECALL_AT) / n, sum(1 / r for r in ranks if r) / n


def measure(
    cases: Sequence[TurnCase],
    depth: int,
    prior: float,
    judges: dict[str, Callable[[str, Sequence[Passage]], list[float]]],
) -> None:
    retriever = open_retriever(load_config(None))
    before: list[int | None] = []
    ceiling = 0
    after: dict[str, list[int | None]] = {mode: [] for mode in judges}
    seconds = dict.fromkeys(judges, 0.0)
    for case in cases:
        found = assess(retriever, case.text, k=depth)
        pairs = [(h.passage.section, h.passage.text) for h in found.hits]
        before.append(retrieval_rank(case, pairs[:RECALL_AT], found.none_fits))
        ceiling += retrieval_rank(case, pairs, found.none_fits) is not None
        for mode, judge in judges.items():
            if found.none_fits or not found.hits:  # none is the retriever's answer: nothing to reorder
                after[mode].append(before[-1])
                continue
            started = time.perf_counter()
            scores = judge(case.text, [h.passage for h in found.hits])
            seconds[mode] += time.perf_counter() - started
            order = sorted(range(len(pairs)), key=lambda i: -(scores[i] - prior * math.log(i + 1)))
            after[mode].append(retrieval_rank(case, [pairs[i] for i in order][:RECALL_AT], False))
    recall, mrr = summary(before)
    print(f"  {len(cases)} turns; the fitting passage among the {depth} found: {ceiling / len(cases):.3f}")
    print(f"  retriever alone        R@3 {recall:.3f}  MRR {mrr:.3f}")
    for mode, ranks in after.items():
        recall, mrr = summary(ranks)
        print(
            f"  LLM {mode:<7} prior {prior:<4} R@3 {recall:.3f}  MRR {mrr:.3f}  {seconds[mode] / len(cases):.1f} s per turn"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("tune", "test"), default="tune")
    parser.add_argument(
        "--modes",
        nargs="*",
        choices=MODES,
        default=list(MODES),
        help="none: the retriever's own figures only",
    )
    parser.add_argument("--depth", type=int, default=8, help="passages the LLM reorders (K)")
    parser.add_argument("--prior", type=float, default=1.0, help="weight of the retriever's order")
    parser.add_argument("--llm", default="qwen2.5-coder-0.5b")
    args = parser.parse_args(argv)
    if not realdata.available():
        print(f"no real dialogues at {realdata.realdata_dir()}: this benchmark reads them", file=sys.stderr)
        return 2
    cases = [c for c in load_cases() if c.split == args.part]
    judges: dict[str, Callable[[str, Sequence[Passage]], list[float]]] = {}
    if args.modes:
        scorer = Scorer(args.llm)
        judges = {"choice": scorer.choice, "yes-no": scorer.yes_no}
    reorders = (
        f"{args.llm} reorders the {args.depth} best" if args.modes else f"the {args.depth} best, no LLM"
    )
    print(f"part {args.part}: {reorders}")
    measure(cases, args.depth, args.prior, {mode: judges[mode] for mode in args.modes})
    return 0


if __name__ == "__main__":
    sys.exit(main())
