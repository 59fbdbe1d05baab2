"""Fetch and push for the git adapter: push is the compare-and-swap of many workers.

A push is never forced: the remote takes it only as a fast-forward of what it holds, so a
rejection means another worker got there first. Rejections that mean "fetch and try again"
are told apart from the ones no retry can fix (a hook, a permission, a protected branch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.adapters.git_cmd import GitRunner, first_line
from orchestrator.errors import GitError

# What git (and the usual servers) print when another push moved the branch first, including
# the remote losing its own ref-lock race ("cannot lock ref ... but expected ...").
_RACE_MARKERS = (
    "non-fast-forward", "fetch first", "cannot lock ref", "stale info", "but expected",
    "failed to update ref", "incorrect old value",
)


@dataclass(frozen=True)
class PushOutcome:
    accepted: bool
    detail: str = ""


def remote_sha(runner: GitRunner, remote: str, branch: str) -> str | None:
    """The branch as this clone last fetched it (None: the remote has none)."""
    proc = runner.run_status(["rev-parse", "-q", "--verify",
                              f"refs/remotes/{remote}/{branch}^{{commit}}"])
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


WORKERS_REF = "refs/orch/workers"
"""On the remote: one ref per dispatching worker, moved by its heartbeats."""
PEERS_REF = "refs/orch/peers"
"""In a clone: the workers' refs as last fetched (the remote's refs/orch/workers/*)."""


TASK_BRANCHES = "orch"
"""The folder of task branches (orch/<project>/<task>), fetched with the main branch: a
task's rework or review may be done in another clone than its first attempt."""


def fetch(runner: GitRunner, remote: str, branch: str) -> str | None:
    """Bring the remote's branch into refs/remotes/<remote>/<branch>, its task branches
    under refs/remotes/<remote>/orch/, and the workers' heartbeats into refs/orch/peers/
    (same command, so no extra round trip); return the branch's sha."""
    proc = runner.run_status([
        "fetch", "--quiet", "--no-tags", "--prune", remote,
        f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}",
        f"+refs/heads/{TASK_BRANCHES}/*:refs/remotes/{remote}/{TASK_BRANCHES}/*",
        f"+{WORKERS_REF}/*:{PEERS_REF}/*"])
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace")
        if "couldn't find remote ref" in message:
            return None  # an empty remote: the first push creates the branch
        raise GitError(f"cannot fetch {branch} from '{remote}': {first_line(message)}; "
                       "check the remote with 'git remote -v' and 'git fetch'")
    return remote_sha(runner, remote, branch)


def push(runner: GitRunner, remote: str, branch: str, commit: str,
         with_branches: Mapping[str, str] | None = None) -> PushOutcome:
    """Push `commit` to the remote's branch, never forced: accepted, a lost race, or
    GitError. `with_branches` (task branch -> commit) go in the same push, atomically: the
    events that name a task branch's commit are never on the remote without that commit.
    Accepted, the remote-tracking refs are moved to what was pushed (the remote holds
    exactly that now), so no fetch is needed to know where it is."""
    pushed = {branch: commit, **(with_branches or {})}
    outcome = _push(runner, remote, [f"{sha}:refs/heads/{name}" for name, sha in
                                     sorted(pushed.items(), key=lambda kv: kv[0] != branch)],
                    branch, "nothing is lost, the commits wait in this clone")
    if outcome.accepted:
        runner.run(["update-ref", "--stdin"], input="".join(
            f"update refs/remotes/{remote}/{name} {sha}\n"
            for name, sha in pushed.items()).encode())
    return outcome


def _push(runner: GitRunner, remote: str, refspecs: list[str], branch: str,
          kept: str) -> PushOutcome:
    """One push, never forced: accepted, a lost race (to fetch and retry), or GitError for a
    refusal no retry fixes (a hook, a permission, a protected branch, no remote); `kept`
    says where the work waits meanwhile. Several refs are pushed all or none (--atomic)."""
    atomic = ["--atomic"] if len(refspecs) > 1 else []
    proc = runner.run_status(["push", "--porcelain", "--quiet", *atomic, remote, *refspecs])
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    if proc.returncode == 0:
        return PushOutcome(True)
    if atomic and "does not support --atomic" in out:
        raise GitError(f"'{remote}' cannot take a push of several refs at once (--atomic), "
                       f"which task branches need; {kept}: use a remote that supports atomic "
                       "pushes (GitHub and git itself do)")
    lowered = out.lower()
    if any(m in lowered for m in _RACE_MARKERS) and "hook declined" not in lowered:
        return PushOutcome(False, _reason(out))
    raise GitError(f"'{remote}' did not take the push of {branch}: {_reason(out)}; {kept}: "
                   "fix that and run orch again")


def announce(runner: GitRunner, remote: str, worker: str, env: dict[str, str]) -> bool:
    """Push this worker's heartbeat to refs/orch/workers/<worker>: a commit of the empty
    tree whose committer date says when, child of the last one (a fast-forward, never
    forced). Advisory: False when the remote did not take it."""
    ref = f"{PEERS_REF}/{worker}"
    last = runner.run_status(["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"])
    parent = last.stdout.decode().strip() if last.returncode == 0 else ""
    tree = runner.run(["mktree"], input=b"").decode().strip()
    made = runner.run_status(["commit-tree", tree, *(["-p", parent] if parent else []),
                              "-m", f"orch worker {worker} is dispatching"], env=env)
    if made.returncode != 0:
        return False
    commit = made.stdout.decode().strip()
    pushed = runner.run_status(["push", "--quiet", remote, f"{commit}:{WORKERS_REF}/{worker}"])
    if pushed.returncode != 0:
        return False
    runner.run_status(["update-ref", ref, commit])
    return True


def retire(runner: GitRunner, remote: str, worker: str) -> None:
    """Take this worker's heartbeat off the remote when it stops: peers stop counting it."""
    runner.run_status(["push", "--quiet", remote, f":{WORKERS_REF}/{worker}"])
    runner.run_status(["update-ref", "-d", f"{PEERS_REF}/{worker}"])


def peers(runner: GitRunner, since_unix: int) -> set[str]:
    """The workers whose last heartbeat (as last fetched) is at or after `since_unix`."""
    proc = runner.run_status(["for-each-ref", "--format=%(committerdate:unix) %(refname)",
                              f"{PEERS_REF}/"])
    alive = set()
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        when, _, ref = line.partition(" ")
        if when.isdigit() and int(when) >= since_unix:
            alive.add(ref.removeprefix(f"{PEERS_REF}/"))
    return alive


def push_branch(runner: GitRunner, remote: str, branch: str) -> PushOutcome:
    """Push a local branch (not the checked-out one) to the remote's branch of that name,
    never forced: a task branch for its pull request."""
    return _push(runner, remote, [f"refs/heads/{branch}:refs/heads/{branch}"], branch,
                 "the branch stays in this clone")


def remote_task_branches(runner: GitRunner, remote: str) -> dict[str, str]:
    """The remote's task branches as last fetched: name (orch/...) -> sha."""
    prefix = f"refs/remotes/{remote}/"
    out = runner.run(["for-each-ref", "--format=%(refname) %(objectname)",
                      f"{prefix}{TASK_BRANCHES}/"])
    found = {}
    for line in out.decode("utf-8", "replace").splitlines():
        ref, _, sha = line.partition(" ")
        found[ref.removeprefix(prefix)] = sha
    return found


def delete_remote_branches(runner: GitRunner, remote: str, branches: Mapping[str, str]) -> int:
    """Delete the remote's branches, each only if it is still at the commit given (a
    compare-and-swap: a branch someone pushed to meanwhile stays). Returns how many went."""
    if not branches:
        return 0
    leases = [f"--force-with-lease=refs/heads/{name}:{sha}" for name, sha in branches.items()]
    proc = runner.run_status(["push", "--porcelain", "--quiet", *leases, remote,
                              *(f":refs/heads/{name}" for name in branches)])
    out = proc.stdout.decode("utf-8", "replace")
    gone = [line.split("\t")[1].partition(":")[2] for line in out.splitlines()
            if line.startswith("-\t") and line.count("\t") >= 2]
    # What went there is gone from this clone's view too (no fetch --prune needed to see it).
    tracking = [ref.replace("refs/heads/", f"refs/remotes/{remote}/", 1) for ref in gone
                if ref.startswith("refs/heads/")]
    if tracking:
        runner.run(["update-ref", "--stdin"],
                   input="".join(f"delete {ref}\n" for ref in tracking).encode())
    return len(gone)


def _reason(out: str) -> str:
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("!") or "rejected" in ln or ln.startswith("remote:"):
            return ln.lstrip("!\t ")[:300]
    return first_line(out)[:300]
