"""Measure a previous release on the real-call development set; save its numbers for `copilot eval realcalls`.

    .venv/bin/python eval/realcalls_previous.py            # release d54dabe in a git worktree at /tmp/prev

The previous release's code runs in a subprocess (``PYTHONPATH`` = its worktree, same venv): it reviews each
labelled call and helpdesk dialogue, written as a segments transcript with every time 0 (the only shape it
reads), and reads the mood of every customer line. The current code then computes the same metrics as the
suite and writes them to ``eval/realdata/previous_release.json`` (numbers only, no text).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from copilot.config import REPO_DIR
from copilot.evaluation.realcalls import (
    BASELINE_FILE,
    Observation,
    chosen_dialogues,
    load_labels,
    summarise,
)
from copilot.evaluation.realdata import Dialogue

# Runs inside the previous release: its own review and tone modules, both layouts tried.
DUMPER = r"""
import json, sys, time
try:
    from copilot.qa.review import ReviewOptions, review_call, review_dict
    from copilot.judgement.tone import customer_emotion
    from copilot.transcription.transcript_files import transcript_from_dict
except ImportError:
    from copilot.review import ReviewOptions, review_call, review_dict
    from copilot.tone import customer_emotion
    from copilot.transcript_io import transcript_from_dict
items = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
out = open(sys.argv[2], "w", encoding="utf-8")
for item in items:
    started = time.perf_counter()
    transcript = transcript_from_dict(item["document"], item["id"])
    review = review_dict(review_call(transcript, options=ReviewOptions(redact=True, tone=True)))
    seconds = time.perf_counter() - started
    moods = {str(i): customer_emotion(t["text"]).label
             for i, t in enumerate(item["document"]["segments"]) if t["role"] == "customer"}
    out.write(json.dumps({"id": item["id"], "review": review, "moods": moods, "seconds": seconds},
                         ensure_ascii=False) + "\n")
"""


def zero_time_document(dialogue: Dialogue) -> dict[str, object]:
    roles = {"agent": "agent", "customer": "customer"}
    return {
        "name": dialogue.id,
        "segments": [
            {"role": roles.get(t.role, "unknown"), "start": 0, "end": 0, "text": t.text}
            for t in dialogue.turns
        ],
    }


def measure(worktree: Path) -> list[Observation]:
    dialogues = chosen_dialogues()
    with tempfile.TemporaryDirectory() as tmp:
        given, taken = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        given.write_text(
            "".join(
                json.dumps({"id": d.id, "document": zero_time_document(d)}, ensure_ascii=False) + "\n"
                for d in dialogues
            ),
            encoding="utf-8",
        )
        env = {**os.environ, "PYTHONPATH": str(worktree)}
        subprocess.run(
            [sys.executable, "-c", DUMPER, str(given), str(taken)], check=True, env=env, cwd=worktree
        )
        rows = [json.loads(line) for line in taken.read_text(encoding="utf-8").splitlines()]
    return [
        Observation(
            id=r["id"],
            review=r["review"],
            moods={int(k): v for k, v in r["moods"].items()},
            seconds=r["seconds"],
        )
        for r in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="d54dabe", help="the previous release's commit")
    parser.add_argument("--worktree", default="/tmp/prev", help="where its worktree is (made if missing)")
    args = parser.parse_args()
    worktree = Path(args.worktree)
    if not worktree.exists():
        subprocess.run(["git", "worktree", "add", str(worktree), args.rev], check=True, cwd=REPO_DIR)
    numbers = summarise(measure(worktree), load_labels())
    BASELINE_FILE.write_text(
        json.dumps({"release": args.rev, **numbers}, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"wrote {BASELINE_FILE}")


if __name__ == "__main__":
    main()
