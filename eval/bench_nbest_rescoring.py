"""How much a language model could add to Whisper: N-best decoding rescored by the local LLM (issue #19).

An experiment, not a product path: the product's transcription does not rescore yet. On the real clips
(``../shared/realdata/asr``, the halves of ``eval/bench_transcription.py``) it decodes each clip once with
ctranslate2's beam search keeping the N best hypotheses (the plain loop's model files and prompt), scores
every hypothesis with the LLM's log-probability, and picks by
``(whisper log-prob + weight * LLM log-prob) / characters``.
Printed per set: the plain faster-whisper loop's CER, the beam's first hypothesis, the oracle (the best of
the N, what rescoring could reach at most) and the pick for each weight, with the CPU time of each part.

    .venv/bin/python eval/bench_nbest_rescoring.py --half tuning            # choose the weight here
    .venv/bin/python eval/bench_nbest_rescoring.py --half held-out --weights 0.5
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_transcription", HERE / "bench_transcription.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_transcription"] = bench
_spec.loader.exec_module(bench)

from copilot.evaluation.metrics import cer  # noqa: E402
from copilot.models.provision import runtime_path  # noqa: E402

LLM_PREFIX = "以下是普通话的句子："  # the LLM reads each hypothesis as a sentence of Mandarin


@dataclass
class Decoded:
    reference: str
    plain: str
    hypotheses: list[str]
    whisper: list[float]  # total log-probability of each hypothesis under Whisper
    llm: list[float]  # total log-probability of each hypothesis under the LLM


def cpu() -> float:
    times = bench.resource.getrusage(bench.resource.RUSAGE_SELF)
    return times.ru_utime + times.ru_stime


class NBestDecoder:
    """The plain loop's model files and prompt, decoded with ctranslate2 keeping the N best."""

    def __init__(self, n: int) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.n = n
        self.model = WhisperModel(str(runtime_path("whisper-base")), device="cpu", compute_type="int8")
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, True, task="transcribe", language="zh")
        prompt = self.tokenizer.encode(" " + bench.PLAIN_PROMPT)
        self.prompt = [
            self.tokenizer.sot_prev, *prompt, *self.tokenizer.sot_sequence, self.tokenizer.no_timestamps
        ]  # fmt: skip

    def plain(self, path: Path) -> str:
        options = {"language": "zh", "beam_size": bench.PLAIN_BEAM, "initial_prompt": bench.PLAIN_PROMPT}
        segments, _ = self.model.transcribe(str(path), **options)
        return "".join(s.text for s in segments)

    def nbest(self, path: Path) -> tuple[list[str], list[float]]:
        import numpy as np
        from faster_whisper.audio import decode_audio

        audio = decode_audio(str(path), sampling_rate=16000)
        extractor = self.model.feature_extractor
        features = extractor(audio)[:, : extractor.nb_max_frames]
        features = np.pad(features, ((0, 0), (0, extractor.nb_max_frames - features.shape[-1])))
        encoded = self.model.encode(features)
        result = self.model.model.generate(
            encoded, [self.prompt], beam_size=max(5, self.n), num_hypotheses=self.n, return_scores=True,
            max_length=224,
        )[0]  # fmt: skip
        texts, totals = [], []
        for ids, score in zip(result.sequences_ids, result.scores, strict=True):
            tokens = [t for t in ids if t < self.tokenizer.eot]
            texts.append(self.tokenizer.decode(tokens).strip())
            totals.append(score * max(1, len(tokens)))  # scores are length-normalised
        return texts, totals


class LanguageModel:
    """Total log-probability of a text under the local LLM, the N hypotheses of a clip in one batch."""

    def __init__(self, name: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = runtime_path(name)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.prefix = self.tokenizer(LLM_PREFIX)["input_ids"]

    def log_probs(self, texts: list[str]) -> list[float]:
        torch = self.torch
        rows = [self.prefix + self.tokenizer(t)["input_ids"] for t in texts]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        with torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)
        picked = logits[:, :-1].gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        scored = mask[:, 1:].clone()
        scored[:, : len(self.prefix) - 1] = 0  # the prefix is the same for all: only the text counts
        return [float(v) for v in (picked * scored).sum(1)]


def pick(decoded: Decoded, weight: float) -> str:
    """The hypothesis with the best log-probability per character: on totals a one-character hypothesis
    (「。」) outscored whole sentences (tuning half, 8 kHz: 1 clip of 47, product / plain 0.994 -> 0.886)."""
    per_char = [
        (w + weight * m) / max(1, len(text))
        for text, w, m in zip(decoded.hypotheses, decoded.whisper, decoded.llm, strict=True)
    ]
    return decoded.hypotheses[max(range(len(per_char)), key=per_char.__getitem__)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", choices=("real16", "real8"), default=["real16", "real8"])
    parser.add_argument("--half", choices=bench.HALVES, default="tuning")
    parser.add_argument("--n", type=int, default=5, help="hypotheses kept by the beam")
    parser.add_argument("--llm", default="qwen2.5-coder-0.5b", help="runtime model name of the LLM")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 0.7, 1.0])
    parser.add_argument("--limit", type=int, default=None, help="at most N clips per set")
    parser.add_argument("--dump", help="write every clip's reference, plain text and scored hypotheses here")
    args = parser.parse_args()

    decoder, lm = NBestDecoder(args.n), LanguageModel(args.llm)
    clips = [i for i in bench.real_clips(None) if i.half == args.half][: args.limit]
    with tempfile.TemporaryDirectory() as folder:
        sets = {"real16": clips}
        if "real8" in args.sets:
            sets["real8"] = bench.telephone_band(clips, Path(folder))
        for name in args.sets:
            spent = {"plain": 0.0, "nbest": 0.0, "llm": 0.0}
            rows: list[Decoded] = []
            for item in sets[name]:
                started = cpu()
                plain = decoder.plain(item.path)
                after_plain = cpu()
                texts, whisper = decoder.nbest(item.path)
                after_nbest = cpu()
                llm = lm.log_probs(texts)
                spent["plain"] += after_plain - started
                spent["nbest"] += after_nbest - after_plain
                spent["llm"] += cpu() - after_nbest
                rows.append(Decoded(item.refs["unknown"], plain, texts, whisper, llm))
            report(name, args, rows, spent)
            if args.dump:
                with open(args.dump, "a", encoding="utf-8") as out:
                    for row in rows:
                        out.write(
                            json.dumps({"set": name, "half": args.half, **asdict(row)}, ensure_ascii=False)
                            + "\n"
                        )


def report(name: str, args: Any, rows: list[Decoded], spent: dict[str, float]) -> None:
    refs = [r.reference for r in rows]
    plain = cer(refs, [r.plain for r in rows])
    oracle = [min(r.hypotheses, key=lambda h, ref=r.reference: cer([ref], [h])) for r in rows]  # type: ignore[misc]
    print(f"\n{name} ({args.half}, {len(rows)} clips, {args.n}-best, {args.llm})")
    print(f"  plain faster-whisper          CER {plain:.4f}  CPU {spent['plain']:.1f} s")
    first = cer(refs, [r.hypotheses[0] for r in rows])
    print(
        f"  beam's first hypothesis       CER {first:.4f}  ({first / plain:.3f} of plain)  CPU {spent['nbest']:.1f} s"
    )
    best = cer(refs, oracle)
    print(f"  oracle (best of the N)        CER {best:.4f}  ({best / plain:.3f} of plain)")
    for weight in args.weights:
        chosen = cer(refs, [pick(r, weight) for r in rows])
        print(f"  rescored, LLM weight {weight:<4}    CER {chosen:.4f}  ({chosen / plain:.3f} of plain)")
    total = (spent["nbest"] + spent["llm"]) / spent["plain"] if spent["plain"] else float("nan")
    print(f"  LLM scoring CPU {spent['llm']:.1f} s; N-best + LLM = {total:.2f}x the plain loop's CPU")


if __name__ == "__main__":
    main()
