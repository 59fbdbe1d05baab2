"""A worker of the push race test: in its own clone, `rounds` times append one event and
publish it through the remote (push as compare-and-swap); prints the ids it pushed."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator.core import events as ev
from orchestrator.runtime.sync import publish
from orchestrator.runtime.workspace import Workspace


def main(clone: str, rounds: int) -> None:
    ws = Workspace.open(Path(clone))
    remote = ws.repo.remote()
    assert remote is not None
    ids: list[str] = []
    retries = 0
    for n in range(rounds):
        [event] = ws.log.stage("race", [ev.NewEvent(
            payload=ev.MonitorAlert(kind="other", message=f"{Path(clone).name} round {n}"),
            actor="monitor")])
        ids.append(event.id)
        report = publish(ws, remote, attempts=1000, base_delay_s=0.05)
        retries += report.rejections
        assert report.pushed and not report.dropped, report
    print(" ".join(ids))
    print(f"rejections {retries}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
