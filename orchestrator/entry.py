"""The `orch` executable's first code: a Ctrl-C while the command line is still loading
ends quietly (exit 130), not with a traceback of whatever module was being imported."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from orchestrator.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    cli_main()
