"""Reading the log from a real repository: hostile files, the cache noticing change."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from orchestrator.adapters.event_reader import LogReader
from orchestrator.adapters.eventfiles import EVENTS_DIR
from orchestrator.core import events as ev
from orchestrator.runtime.workspace import Workspace


def _workspace(path: Path) -> Workspace:
    ws, _ = Workspace.init(path)
    return ws


def _seed_project(ws: Workspace, project: str = "p1", tasks: int = 3) -> None:
    ws.log.append(project, [ev.NewEvent(payload=ev.ProjectCreated(title="t"), actor="system")])
    ws.log.append(project, [ev.NewEvent(payload=ev.ModulePlanned(module="backend"), actor="cto")])
    ws.log.append(project, [
        ev.NewEvent(payload=ev.TaskAssigned(task_id=f"T{i}", module="backend"), actor="pm")
        for i in range(tasks)])


def _hostile_files(shard: Path, count: int) -> dict[str, str]:
    """Broken and hostile event files, each with the reason a reader should give."""
    rng = random.Random(5)
    bomb = "a: &a [x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    kinds = {
        "alias": bomb,
        "deep": "x: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "deepblock": "".join("  " * i + f"k{i}:\n" for i in range(3000)) + "  " * 3000 + "v: 1\n",
        "python": "!!python/object/apply:os.system ['echo pwned']\n",
        "dupkeys": "id: a\nid: b\n",
        "big": "x: " + "y" * (10 * 1024 * 1024) + "\n",
        "binary": None,
        "badyaml": "a: [unclosed\n",
        "unknown": "schema: 1\ntype: what.is.this\n",
        "tag": "a: !custom 1\n",
    }
    expected: dict[str, str] = {}
    names = list(kinds)
    for i in range(count):
        kind = names[i % len(names)]
        name = f"{90_000_000 + i:08d}-01HZZZZZZZZZZZZZZZZZZZZZ{i % 100:02d}.task.assigned.yaml"
        path = shard / name
        text = kinds[kind]
        if text is None:
            path.write_bytes(bytes(rng.getrandbits(8) for _ in range(512)))
        elif kind == "big" and i >= len(names):
            path.write_text("x: 1\n" * 10)  # one 10 MB file is enough; the rest are small
            kind = "mismatch"
        else:
            path.write_text(text)
        expected[f"{EVENTS_DIR}/p1/{shard.name}/{name}"] = kind
    return expected


def test_hostile_files_are_findings_and_valid_events_still_fold(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    _seed_project(ws)
    shard = tmp_path / EVENTS_DIR / "p1" / "0000"
    expected = _hostile_files(shard, 1000)
    (tmp_path / EVENTS_DIR / "stray.yaml").write_text("x: 1\n")
    (tmp_path / EVENTS_DIR / "p1" / "0000" / "notes.txt").write_text("hello")
    reader = LogReader(tmp_path, ws.repo, use_cache=False)
    view = reader.views()["p1"]
    named = {f["path"] for f in view["findings"]}
    assert set(expected) <= named
    assert f"{EVENTS_DIR}/p1/0000/notes.txt" in named
    assert [f.path for f in reader.stray_findings()] == [f"{EVENTS_DIR}/stray.yaml"]
    assert {t["id"] for t in view["tasks"]} == {"T0", "T1", "T2"}
    reasons = " ".join(f["reason"] for f in view["findings"]).lower()
    for word in ("anchor", "deeper", "tag", "duplicate", "bytes", "unknown event type"):
        assert word in reasons


def test_cache_notices_changed_removed_and_added_files(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    _seed_project(ws)
    assert len(LogReader(tmp_path, ws.repo).views()["p1"]["tasks"]) == 3
    files = sorted((tmp_path / EVENTS_DIR / "p1" / "0000").glob("*task.assigned*"))
    # Changed in place (same directory, same name): must be noticed.
    text = files[0].read_text()
    files[0].write_text(text.replace('task_id: "T0"', 'task_id: "T9"'))
    view = LogReader(tmp_path, ws.repo).views()["p1"]
    assert {t["id"] for t in view["tasks"]} == {"T9", "T1", "T2"}
    # Removed: noticed.
    files[1].unlink()
    view = LogReader(tmp_path, ws.repo).views()["p1"]
    assert {t["id"] for t in view["tasks"]} == {"T9", "T2"}
    # Appended by this process: folded incrementally, same result as a cold read.
    ws.log.append("p1", [ev.NewEvent(payload=ev.TaskCompleted(task_id="T2"), actor="dev")])
    warm = LogReader(tmp_path, ws.repo).views()["p1"]
    cold = LogReader(tmp_path, ws.repo, use_cache=False).views()["p1"]
    assert warm == cold
    assert {t["id"]: t["status"] for t in warm["tasks"]}["T2"] == "completed"


def test_a_broken_cache_is_only_a_slower_read(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    _seed_project(ws)
    LogReader(tmp_path, ws.repo).views()
    for path in (tmp_path / ".git" / "orch" / "cache").rglob("*.json"):
        path.write_bytes(b"\x00garbage")
    assert len(LogReader(tmp_path, ws.repo).views()["p1"]["tasks"]) == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file_is_a_finding(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    _seed_project(ws)
    victim = sorted((tmp_path / EVENTS_DIR / "p1" / "0000").glob("*.yaml"))[-1]
    victim.chmod(0)
    view = LogReader(tmp_path, ws.repo, use_cache=False).views()["p1"]
    assert any("cannot read" in f["reason"] for f in view["findings"])


def test_many_cold_projects_fold_in_worker_processes_to_the_same_views(tmp_path: Path) -> None:
    from orchestrator.adapters.cache import Cache
    from orchestrator.adapters.event_refresh import refresh_project

    ws = _workspace(tmp_path)
    names = [f"p{i}" for i in range(6)]
    for i, name in enumerate(names):
        _seed_project(ws, name, tasks=i + 1)
    parallel = LogReader(tmp_path, ws.repo).views()  # cold: 6 projects > PARALLEL_MIN_PROJECTS
    sequential = {n: refresh_project(tmp_path, n, Cache(tmp_path), False)[1] for n in names}
    assert parallel == sequential
    states = LogReader(tmp_path, ws.repo).states()  # from the caches the workers wrote
    assert {n: len(s.tasks) for n, s in states.items()} == {n: i + 1 for i, n in enumerate(names)}
