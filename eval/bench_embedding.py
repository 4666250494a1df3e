"""Load time, memory and throughput of each embedder, on handbook sentences.

Each model is measured in its own child process so resident memory is not shared between them.
Run after ``copilot models install``:

    .venv/bin/python eval/bench_embedding.py [--models e5-small use-multilingual] [--sentences 256]

``--queries`` instead times one-query calls of a sentence-transformers model (default e5-small) over the
queries of eval/retrieval.yaml, torch against the ONNX query encoder, interleaved so both see the same load:

    .venv/bin/python eval/bench_embedding.py --queries [--models e5-small]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HANDBOOKS = REPO.parent / "shared" / "handbooks"
DEFAULT_MODELS = ("e5-small", "use-multilingual")
SENTENCES = 256  # batch measured for throughput
SINGLE_RUNS = 20  # one-sentence calls timed for latency
QUERY_REPEATS = 1  # passes over eval/retrieval.yaml in --queries mode
WARMUP = 3  # first calls pay for lazy initialisation
MIN_CHARS, MAX_CHARS = 8, 120  # keep sentence-sized pieces of the handbooks


def handbook_sentences(limit: int) -> list[str]:
    pieces: list[str] = []
    for path in sorted(HANDBOOKS.glob("*.txt")):
        for piece in re.split(r"[。！？!?\n]+", path.read_text(encoding="utf-8")):
            piece = piece.strip(" -\t")
            if MIN_CHARS <= len(piece) <= MAX_CHARS:
                pieces.append(piece)
    if not pieces:
        raise SystemExit(f"no sentences found under {HANDBOOKS}")
    while len(pieces) < limit:  # a tiny corpus is cycled rather than padded with made-up text
        pieces += pieces
    return pieces[:limit]


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    fields = dict(
        line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def measure(model: str, count: int) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sentences = handbook_sentences(count)
    started = time.perf_counter()
    from copilot.config import EmbedderConfig
    from copilot.knowledge.embedding import load_embedder

    embedder = load_embedder(EmbedderConfig(model=model))
    load_s = time.perf_counter() - started
    loaded_rss, _ = rss_mb()
    embedder.embed(sentences[:4], kind="passage")  # warm-up
    started = time.perf_counter()
    embedder.embed(sentences, kind="passage")
    batch_s = time.perf_counter() - started
    started = time.perf_counter()
    for sentence in sentences[:SINGLE_RUNS]:
        embedder.embed([sentence], kind="query")
    single_ms = (time.perf_counter() - started) / SINGLE_RUNS * 1000
    _current, peak = rss_mb()
    return {
        "model": model,
        "dimension": embedder.dimension,
        "load_s": round(load_s, 2),
        "rss_after_load_mb": round(loaded_rss, 0),
        "rss_peak_mb": round(peak, 0),
        "sentences_per_s": round(len(sentences) / batch_s, 1),
        "single_query_ms": round(single_ms, 1),
        "mean_chars": round(sum(map(len, sentences)) / len(sentences), 1),
    }


def query_latency(model: str, repeats: int = QUERY_REPEATS) -> None:
    """p50 / p95 of one live query (``embed([q], kind="query")``), torch vs the ONNX query encoder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from copilot.config import EmbedderConfig
    from copilot.evaluation.metrics import percentile
    from copilot.evaluation.retrieval import DEFAULT_SET, load_set
    from copilot.knowledge.embedding import SentenceTransformerEmbedder

    queries = [item.query for item in load_set(DEFAULT_SET)]
    embedders = {
        "torch": SentenceTransformerEmbedder(EmbedderConfig(model=model, onnx_queries=False)),
        "onnx": SentenceTransformerEmbedder(EmbedderConfig(model=model)),
    }
    if embedders["onnx"].onnx is None:
        raise SystemExit(f"{model} has no ONNX query encoder; run: .venv/bin/copilot models install")
    timings: dict[str, list[float]] = {name: [] for name in embedders}
    for embedder in embedders.values():
        for query in queries[:WARMUP]:
            embedder.embed([query], kind="query")
    for _ in range(repeats):
        for query in queries:
            for name, embedder in embedders.items():
                started = time.perf_counter()
                embedder.embed([query], kind="query")
                timings[name].append((time.perf_counter() - started) * 1000)
    print(
        f"{os.cpu_count()} CPUs; {model}: {len(queries)} queries of {DEFAULT_SET.name} x {repeats}, one at a time"
    )
    for name, values in timings.items():
        print(
            f"{name:<6} query p50 {percentile(values, 0.5):6.1f} ms   p95 {percentile(values, 0.95):6.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--sentences", type=int, default=SENTENCES)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: measure one model, print JSON
    parser.add_argument(
        "--queries", action="store_true", help="one-query latency, torch vs ONNX, on eval/retrieval.yaml"
    )
    args = parser.parse_args()
    if args.queries:
        query_latency(args.models[0])
        return
    if args.one:
        print(json.dumps(measure(args.one, args.sentences)))
        return
    print(f"{os.cpu_count()} CPUs; {args.sentences} handbook sentences per batch")
    header = ("model", "dim", "load s", "RSS MB", "peak MB", "sent/s", "1 query ms")
    print("{:<18}{:>5}{:>8}{:>8}{:>9}{:>9}{:>12}".format(*header))
    for model in args.models:
        child = subprocess.run(
            [sys.executable, __file__, "--one", model, "--sentences", str(args.sentences)],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        if child.returncode != 0:
            print(f"{model:<18} failed: {child.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{r['model']:<18}{r['dimension']:>5}{r['load_s']:>8}{r['rss_after_load_mb']:>8.0f}"
            f"{r['rss_peak_mb']:>9.0f}{r['sentences_per_s']:>9}{r['single_query_ms']:>12}"
        )


if __name__ == "__main__":
    main()
