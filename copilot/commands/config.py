"""``copilot config show``: the effective configuration, each value with where it came from."""

from __future__ import annotations

import argparse

from copilot.commands._common import print_json
from copilot.config import effective_settings

SECRET_KEYS = ("password", "url")  # shown as set / not set: a config listing is pasted into tickets


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show the effective configuration and where each value comes from",
        description="Print every setting: its value and its source (default, the TOML file, or an "
        "environment variable). Passwords and database URLs are shown only as set / not set.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print the effective configuration")
    show.add_argument("--json", action="store_true", help="one JSON object: key -> {value, source}")
    show.set_defaults(func=_show)


def _shown(key: str, value: object) -> object:
    if any(key.endswith(secret) for secret in SECRET_KEYS) and value not in ("", "(set)"):
        return "(set)"
    return value


def _show(args: argparse.Namespace) -> int:
    settings = effective_settings(getattr(args, "config", None))
    if args.json:
        print_json({s.key: {"value": _shown(s.key, s.value), "source": s.source} for s in settings})
        return 0
    width = max(len(s.key) for s in settings)
    for s in settings:
        print(f"{s.key:<{width}}  {_shown(s.key, s.value)!r:<40}  {s.source}")
    return 0
