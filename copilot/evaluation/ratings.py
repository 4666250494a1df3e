"""``copilot eval ratings``: the good / bad ratings people gave suggestions in the app.

Read from the database (:meth:`copilot.qa.store.Store.ratings`) and reported beside the automatic measures,
so a trainer sees whether what the metrics call good is what agents call good.
"""

from __future__ import annotations

from typing import Any

from copilot.config import Config
from copilot.evaluation import EvalOutcome, Metric, SuiteOptions, rate, register_suite


def ratings_summary(ratings: list[Any]) -> dict[str, Any]:
    good = sum(1 for r in ratings if r.rating == "good")
    bad = sum(1 for r in ratings if r.rating == "bad")
    worst: dict[str, int] = {}
    for r in ratings:
        if r.rating == "bad":
            worst[r.suggestion_text] = worst.get(r.suggestion_text, 0) + 1
    return {
        "suite": "ratings",
        "good": good,
        "bad": bad,
        "good_rate": rate(good, good + bad),
        "most_disliked": sorted(worst.items(), key=lambda item: -item[1])[:3],
    }


def run_ratings(options: SuiteOptions, config: Config) -> EvalOutcome:
    from copilot.qa.store import Store

    with Store.open(config=config.store) as store:
        data = ratings_summary(store.ratings())
    text = f"ratings from the app: {data['good']} good, {data['bad']} bad"
    if data["good_rate"] is not None:
        text += f" ({data['good_rate']:.0%} good)"
    text += "".join(f"\n  disliked {count}x: {suggestion}" for suggestion, count in data["most_disliked"])
    return EvalOutcome(text, data)


def ratings_metrics(data: dict[str, Any], config: Config) -> list[Metric]:
    total = data["good"] + data["bad"]
    return [
        Metric("good", "rated good by people", data["good"], unit="n"),
        Metric("bad", "rated bad by people", data["bad"], "lower", "n"),
        Metric("good_rate", "share rated good", data["good_rate"], n=total),
    ]


register_suite(
    "ratings",
    run_ratings,
    help="human good/bad ratings of suggestions given in the app (from the database)",
    metrics=ratings_metrics,
)
