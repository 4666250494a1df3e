"""The ``copilot`` command: a thin shell over the library.

Each sub-command lives in ``copilot/commands/<name>.py`` and exposes ``register(subparsers)``.
Errors raised as :class:`~copilot.errors.CopilotError` become a one-line message and an exit code.
Anything else is a bug: the user still gets one line (exit 70), and ``COPILOT_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from copilot.errors import CopilotError

# Order is the order of `copilot --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "copilot.commands.models",
    "copilot.commands.check",
    "copilot.commands.review",
    "copilot.commands.store",
    "copilot.commands.ingest",
    "copilot.commands.index",
    "copilot.commands.search",
    "copilot.commands.evaluate",
    "copilot.commands.transcribe",
    "copilot.commands.suggest",
    "copilot.commands.summarize",
    "copilot.commands.replay",
    "copilot.commands.listen",
    "copilot.commands.config",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only ``command``'s sub-command when a module of that name exists: each
    module imports what its command needs (``review`` pulls in the database layer, ~1.5 s), and a one-clip
    ``copilot transcribe`` should not wait for the others."""
    parser = argparse.ArgumentParser(
        prog="copilot",
        description="Agent copilot for Mandarin after-sales service calls.",
    )
    parser.add_argument("--config", help="TOML configuration file (default: $COPILOT_CONFIG or built-in)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    only = f"copilot.commands.{command}"
    for name in (only,) if only in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def command_name(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is neither an option nor ``--config``'s value)."""
    tokens = iter(argv)
    for token in tokens:
        if token == "--config":
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_name(arguments))
    args = parser.parse_args(arguments)
    try:
        return int(args.func(args) or 0)
    except CopilotError as e:
        print(f"copilot: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("copilot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError:
        print("copilot: error: out of memory", file=sys.stderr)
        return 71
    except Exception as e:
        if os.environ.get("COPILOT_DEBUG"):
            raise
        print(
            f"copilot: internal error: {type(e).__name__}: {e} (COPILOT_DEBUG=1 shows details)",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
