"""Whether generated code can run here in bubblewrap, for tests that need it to."""

from __future__ import annotations

import pytest

from orchestrator.adapters.sandbox import NoSandbox, open_sandbox


def sandbox_problem() -> str:
    try:
        open_sandbox("bwrap")
    except NoSandbox as exc:
        return str(exc)
    return ""


needs_sandbox = pytest.mark.skipif(
    bool(sandbox_problem()),
    reason=f"{sandbox_problem()} (make test / .ci/run install bubblewrap where root or sudo "
           f"and apt-get are at hand)")
