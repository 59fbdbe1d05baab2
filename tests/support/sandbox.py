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


# The test venv's pytest plugins (hypothesis, anyio) cost ~2 s at every start of pytest, and
# the simulated team's tests need none: e2e runs (dozens of QA checks each) turn them off.
FAST_PYTEST = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 pytest -q -p no:cacheprovider {files}"
FAST_QA: dict[str, object] = {"languages": {"python": {"detect": ["**/test_*.py"],
                                                       "command": FAST_PYTEST}}}
FAST_QA_YAML = f"""\
qa:
  languages:
    python:
      detect: ["**/test_*.py"]
      command: "{FAST_PYTEST}"
"""
NO_CODE_CHECKS: dict[str, object] = {"languages": {"python": None, "javascript": None}}
"""For tests about something else than QA's checks (providers, specs, steering): a run's
checks are most of its CPU (a pytest in the sandbox per task), and on the 2 cores of CI
they decided the suite's time."""
NO_CODE_CHECKS_YAML = """\
qa:
  languages:
    python: null
    javascript: null
"""
