"""Watching the repository for new specs and events (watchdog): the only place that does."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


class _Flag(FileSystemEventHandler):
    def __init__(self, changed: threading.Event) -> None:
        self.changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = str(event.src_path)
        if "/.git/" not in path and "/.tmp-" not in path:
            self.changed.set()


class ChangeWatch:
    """Sets `changed` whenever something under the watched folders is written."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.changed = threading.Event()
        self._observer = Observer()
        handler = _Flag(self.changed)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            self._observer.schedule(handler, str(folder), recursive=True)

    def __enter__(self) -> ChangeWatch:
        self._observer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def wait(self, timeout: float) -> bool:
        """True when something changed within `timeout` seconds (the flag is then cleared)."""
        hit = self.changed.wait(timeout)
        if hit:  # cleared only when seen: a change landing just after a timeout is kept
            self.changed.clear()
        return hit
