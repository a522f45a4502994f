"""``crm report`` and ``crm export``: the output commands of the CLI.

``add_output_commands`` adds their subparsers; ``OUTPUT_COMMANDS`` maps each
command name to its handler ``(args) -> exit code``.
"""

from __future__ import annotations

import argparse


def add_output_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the output subcommands to the ``crm`` parser."""


OUTPUT_COMMANDS: dict = {}
