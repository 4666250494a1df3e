"""The copilot's Gradio app: live side panel for agents, review for QA, workbench for trainers.

Thin by design: everything it shows comes from the library (``copilot``); this file only parses the
command line, loads the configuration and starts the server on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from copilot.config import load_config
from copilot.errors import CopilotError


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Start the Mandarin service-call copilot app.")
    parser.add_argument("--config", help="TOML configuration file")
    parser.add_argument("--host", help="address to listen on (default from config: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default from config: 7860)")
    parser.add_argument(
        "--hash-password",
        action="store_true",
        help="read a password from the terminal and print its argon2 hash for [app] users, then exit",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.hash_password:
        import getpass

        from copilot.ui.access import hash_password

        print(hash_password(getpass.getpass("password: ")))
        return 0
    try:
        config = load_config(args.config)
    except CopilotError as e:
        print(f"app: error: {e}", file=sys.stderr)
        return e.exit_code
    from copilot.ui.access import private_upload_dir

    private_upload_dir()  # before gradio is imported: uploads in a folder of this app only, gone at exit
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stopped app exits normally: the folder goes too
    from copilot.ui.app import build_app, launch

    demo = build_app(config)
    launch(demo, config, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
