"""`python -m orchestrator` runs the `orch` command line."""

from orchestrator.entry import main

main()
