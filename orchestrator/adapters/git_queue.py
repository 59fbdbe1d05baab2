"""Batching the index updates of many commits: run by the caller, or by a background thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from orchestrator.adapters.git_sync import Change, WorktreeSync
from orchestrator.errors import GitError

log = logging.getLogger(__name__)


class SyncQueue:
    """Paths waiting for the index (and, after a failure, for the work tree).

    One `git update-index` serves every path queued meanwhile, so with a background thread the
    index costs one update per ~20 ms however many commits arrive (at 100k files).
    """

    def __init__(self, sync: WorktreeSync) -> None:
        self._sync = sync
        self._cond = threading.Condition()
        self._paths: dict[bytes, None] = {}
        self._redo: list[Change] = []  # changes whose work-tree write failed
        self._commits = 0
        self._submits = 0
        self._busy = False
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, changes: Iterable[Change], worktree_done: bool, background: bool) -> None:
        changes = list(changes)
        with self._cond:
            self._paths.update(dict.fromkeys(c.path for c in changes))
            if not worktree_done:
                self._redo.extend(changes)
            self._commits += 1
            self._submits += 1
            if background and self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._loop, name="orch-index", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self) -> None:
        """Sync everything queued, in this thread; GitError if the index cannot be updated."""
        while self._run_batch():
            pass
        with self._cond:
            error = self._error
        if error is not None:
            raise GitError(str(error)) from error

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run_batch(self) -> bool:
        """Sync one batch; False when the queue was empty or the batch failed."""
        with self._cond:
            while self._busy:
                self._cond.wait()
            if not self._paths and not self._commits:
                return False
            paths, redo, commits = list(self._paths), self._redo, self._commits
            self._paths, self._redo, self._commits, self._busy = {}, [], 0, True
        error: Exception | None = None
        try:
            if redo:
                self._sync.update_worktree(redo)
            self._sync.update_index(paths)
        except (GitError, OSError) as exc:
            error = exc
        with self._cond:
            self._busy = False
            self._error = error
            if error is not None:
                self._paths = {**dict.fromkeys(paths), **self._paths}
                self._redo = redo + self._redo
                self._commits += commits
            self._cond.notify_all()
        if error is not None:
            log.warning("work tree/index update failed (will retry): %s", error)
            return False
        self._sync.journal.done(commits)
        return True

    def _loop(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._closed and (not self._commits or self._busy):
                    self._cond.wait()
                if self._closed:
                    return
            if self._run_batch():
                failures = 0
                continue
            failures += 1
            with self._cond:  # back off; after 10 failures wait for the next submit or flush
                submits = self._submits
                self._cond.wait(timeout=min(0.05 * 2**failures, 2.0))
                while failures >= 10 and not self._closed and self._submits == submits:
                    self._cond.wait()
