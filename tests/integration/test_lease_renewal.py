"""A model call longer than its lease renews the lease while it runs (real git, one clone)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from orchestrator.core.config import Config
from orchestrator.core.provider import CallMeta, Completion, Message, T
from orchestrator.errors import ProviderError
from orchestrator.runtime.engine import Engine
from orchestrator.runtime.projects import submit
from orchestrator.runtime.workspace import Workspace
from orchestrator.sim.provider import OfflineProvider

SPEC = resources.files("orchestrator.examples").joinpath("task-tracker.md").read_text()
LEASE_S = 2
SLOW_S = 4.5  # more than twice the lease: without renewals the claim would expire mid-call


class SlowEngineer:
    """The offline team, except that the Engineer thinks for longer than a lease; the PMs'
    calls fail, which ends the run at the charter (what follows is not under test)."""

    name = "slow-engineer"

    def __init__(self) -> None:
        self.inner = OfflineProvider(Config().llm.offline)

    def complete(self, role: str, messages: Sequence[Message], output_model: type[T],
                 meta: CallMeta) -> Completion[T]:
        if role == "engineer":
            time.sleep(SLOW_S)
        if role == "pm":
            raise ProviderError("the test ends here")
        return self.inner.complete(role, messages, output_model, meta)


def test_a_call_longer_than_its_lease_renews_it_and_lands_its_result(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "repo")
    (ws.root / "specs").mkdir(exist_ok=True)
    (ws.root / "specs" / "t.md").write_text(SPEC)
    project, _ = submit(ws, str(ws.root / "specs" / "t.md"))
    config = Config.model_validate({"lease_s": LEASE_S})
    report = Engine(ws, config, SlowEngineer()).run([project])
    events = ws.reader.events(project)
    claims = [e for e in events if e.type == "reaction.claimed" and e.actor == "engineer"]
    first, renewals = claims[0], claims[1:]
    assert first.payload.takeover_of == ""  # type: ignore[attr-defined]
    assert renewals and report.renewals >= len(renewals)
    # Each renewal names the one before it and is the same worker's: a chain, not a takeover.
    for before, after in zip(claims, renewals, strict=False):
        assert after.payload.takeover_of == before.id  # type: ignore[attr-defined]
        assert after.payload.worker == first.payload.worker  # type: ignore[attr-defined]
    # Bounded: about one renewal per quarter of a lease at worst, never one per pass.
    assert len(renewals) <= SLOW_S / (LEASE_S / 4) + 1
    [response] = [e for e in events if e.type == "engineer.cto.response"]
    assert any(link.kind == "claim" and link.ref == claims[-1].id for link in response.links)
    state = ws.reader.states([project])[project]
    assert not state.findings and state.charter_event
    assert not [a for a in state.alerts if a.kind == "stale_claim"]
