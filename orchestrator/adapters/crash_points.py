"""Fault injection for the crash tests: `ORCH_CRASH_AT=<point>[:<n>]` ends the process with
exit code 137 (as `kill -9` leaves it) the n-th time it reaches the named point (the first
time without `:n`). Unset, a point costs one dictionary lookup.

Points, in the order a reaction passes them:
  after-model   the model answered; nothing of the answer is staged yet
  after-files   the files are in the work tree and the commit object exists; the branch has
                not moved (the next command undoes it)
  after-ref     the branch moved; the index is not in place yet (the next command finishes it)
  after-commit  committed in the clone, not pushed
  during-push   a lost race: the branch was moved onto the fetched one, the unpushed work is
                kept under refs/orch/unpushed and not yet recommitted
  after-push    the remote took the push; the clone has not recorded it
"""

from __future__ import annotations

import os

POINTS = frozenset({"after-model", "after-files", "after-ref", "after-commit", "during-push",
                    "after-push"})
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get("ORCH_CRASH_AT")
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= (int(nth) if nth.isdigit() else 1):
        os._exit(137)  # no cleanup, no flush: what a kill -9 leaves behind
