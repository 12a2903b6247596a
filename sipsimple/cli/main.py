"""``sipsimple``: the command-line front end; one module per subcommand.

A subcommand module defines::

    NAME = "register"                     # the subcommand's name
    HELP = "one line for 'sipsimple -h'"
    COMMON_OPTIONS = True                 # optional: False to skip the shared account/network options
    def add_arguments(parser): ...        # its own options
    def run(args) -> int: ...             # the exit status

and is listed in :data:`COMMANDS` -- adding a subcommand is one line there.
The global ``--config-dir DIR`` (also accepted after the command) says where the
configured accounts are (``sipsimple account``); default ``$SIPSIMPLE_CONFIG_DIR``,
else ``~/.config/sipsimple``.

Exit status: 0 success, 1 the SIP operation failed, 2 bad usage or setup
(printed as one line ``sipsimple: error: ...``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from sipsimple.cli.options import EXIT_USAGE, CLIError, add_common_options, add_config_dir_option

__all__ = ["COMMANDS", "main", "build_parser"]

# Subcommand modules, in the order 'sipsimple -h' lists them.
COMMANDS: list[str] = [
    "sipsimple.cli.register",
    "sipsimple.cli.message",
    "sipsimple.cli.call",
    "sipsimple.cli.answer",
    "sipsimple.cli.chat",
    "sipsimple.cli.send_file",
    "sipsimple.cli.receive_files",
    "sipsimple.cli.presence",
    "sipsimple.cli.session",
    "sipsimple.cli.account",
    "sipsimple.cli.demo",
    "sipsimple.bench",
]

PROG = "sipsimple"


def _load(module_name: str) -> ModuleType | Exception:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # one broken subcommand must not take the others down
        return exc
    for attr in ("NAME", "run"):
        if not hasattr(module, attr):
            return TypeError(f"{module_name} is not a subcommand module (no {attr})")
    return module


def build_parser(commands: list[str] | None = None) -> argparse.ArgumentParser:
    from sipsimple import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="sipsimple: SIP SIMPLE client tools (accounts, registration, calls, chat, presence, demo).",
        epilog="Run 'sipsimple COMMAND -h' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_config_dir_option(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in commands if commands is not None else COMMANDS:
        module = _load(module_name)
        if isinstance(module, Exception):
            name = module_name.rsplit(".", 1)[-1].replace("_", "-")
            sub = subparsers.add_parser(name, help=f"(unavailable: {module})", add_help=True)
            sub.add_argument("rest", nargs=argparse.REMAINDER)
            sub.set_defaults(_broken=(module_name, module))
            continue
        sub = subparsers.add_parser(
            module.NAME, help=getattr(module, "HELP", None),
            description=getattr(module, "DESCRIPTION", None) or getattr(module, "HELP", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if hasattr(module, "add_arguments"):
            module.add_arguments(sub)
        if getattr(module, "COMMON_OPTIONS", True):
            add_common_options(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_broken", None):
        module_name, exc = args._broken
        print(f"{PROG}: error: command {args.command!r} is unavailable: {module_name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status = args._run(args)
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        status = exc.status
    except BrokenPipeError:  # our output was closed early: not worth a traceback
        status = 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        status = 130
    finally:
        _stop_engine_if_running()
        logging.shutdown()
    return int(status or 0)


def _stop_engine_if_running() -> None:
    # a command that failed half-way may leave the Engine thread up: never hang at exit
    if "sipsimple.core.engine" not in sys.modules:
        return
    from sipsimple.cli.options import stop_engine
    from sipsimple.core import Engine

    if Engine().is_running:
        stop_engine()


if __name__ == "__main__":
    sys.exit(main())
