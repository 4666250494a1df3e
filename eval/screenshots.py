"""Screenshots of each view of the app at a wide screen (1280x900) and a side panel (480x1000), for a person
to look at.

Starts ``python app.py`` as the README does (shipped configuration, its own empty database) and drives
Debian's headless Chromium (as ``tests/browser`` does): the Live view idle, then after bad_call.json and
good_call.json were replayed (transcripts: no speech recognition needed); Review after both were reviewed;
Train after bad_call.json was replayed turn by turn. PNGs go to ``--out`` (default ``artifacts/screenshots``,
outside git).

    .venv/bin/python eval/screenshots.py [--out DIR] [--no-llm]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from copilot.config import shared_dir  # noqa: E402
from tests.app_process import AppDidNotStart, start_app, stop_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
SIZES: dict[str, Any] = {"wide": {"width": 1280, "height": 900}, "narrow": {"width": 480, "height": 1000}}
START_TIMEOUT = 600.0
WAIT_MS = 900_000  # a loaded machine: models load while the first call waits
CALLS = shared_dir() / "calls"
UPLOAD_MS = 60_000


def choose(page: Any, dropdown: str, option: str) -> None:
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=option, exact=True).click()


def shoot(page: Any, out: Path, name: str) -> None:
    page.wait_for_timeout(700)  # one more panel refresh
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    print(path, flush=True)


def live(page: Any, out: Path, size: str, llm: bool) -> None:
    shoot(page, out, f"live_idle_{size}")
    box = page.locator("#live-llm input[type=checkbox]")
    if box.is_checked() != llm:
        box.click()
    for call in ("bad_call", "good_call"):
        choose(page, "#live-example", f"{call}.json (transcript)")
        page.locator("#live-speed").get_by_label("max", exact=True).check()
        page.click("#live-start")
        page.wait_for_selector(
            '#live-status .cp-status[data-finished="false"]:not(.cp-idle)', timeout=WAIT_MS
        )
        page.wait_for_selector('#live-status .cp-status[data-finished="true"]', timeout=WAIT_MS)
        shoot(page, out, f"live_{call}_{size}")


def review(page: Any, out: Path, size: str) -> None:
    page.get_by_role("tab", name="质检 Review").click()
    from playwright.sync_api import TimeoutError as PageTimeout

    page.set_input_files("#review-files input[type=file]", [str(CALLS / "bad_call.json")])
    with contextlib.suppress(PageTimeout):  # the box may not list the name on a loaded page; go anyway
        page.wait_for_selector("#review-files:has-text('bad_call.json')", timeout=UPLOAD_MS)
    page.click("#review-go")
    page.wait_for_selector("#review-scorecards .cp-scorecard", timeout=WAIT_MS)
    shoot(page, out, f"review_{size}")


def train(page: Any, out: Path, size: str) -> None:
    page.get_by_role("tab", name="培训 Train").click()
    choose(page, "#train-example", "bad_call.json (transcript)")
    page.click("#train-go")
    page.wait_for_selector('#train-turns [data-testid="cell-0-3"]', timeout=WAIT_MS)
    shoot(page, out, f"train_{size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "screenshots")
    parser.add_argument("--no-llm", action="store_true", help="live replays without the LLM rewrite")
    parser.add_argument("--views", default="live,review,train", help="comma-separated views to shoot")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    views = set(args.views.split(","))
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="screenshots_") as folder:
        env = {k: v for k, v in os.environ.items() if k != "COPILOT_CONFIG"}
        env.update(COPILOT_DB=f"sqlite:///{Path(folder) / 'copilot.db'}", PYTHONUNBUFFERED="1")
        began = time.monotonic()
        try:
            process, url = start_app(env, Path(folder) / "app.log", START_TIMEOUT)
        except AppDidNotStart as e:
            sys.exit(str(e))
        print(f"app answers after {time.monotonic() - began:.0f} s", flush=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for size, viewport in SIZES.items():
                    page = browser.new_context(viewport=viewport).new_page()
                    page.goto(url, timeout=WAIT_MS)
                    page.wait_for_selector("#live-start", timeout=WAIT_MS)
                    if "live" in views:
                        live(page, args.out, size, not args.no_llm)
                    if "review" in views:
                        review(page, args.out, size)
                    if "train" in views:
                        train(page, args.out, size)
                    page.context.close()
                browser.close()
        finally:
            stop_app(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
