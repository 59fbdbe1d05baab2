"""Keeping the work tree and the index in step with commits written as objects, crash-safely.

The commit (objects + ref) is the truth. Before the ref moves, the paths it changes are
appended to this instance's journal, `.git/orch/pending/<token>.journal`, which the instance
holds an flock on while it lives. After the ref moved, the files are written into the work tree
(temp + rename) and the index is updated with `git update-index`; then the journal is
truncated. A journal nobody holds belongs to a process that died: `repair()` redoes it. Every
step brings a path to what the branch head holds *now*, so redoing is always safe.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.git_cmd import GitRunner, first_line
from orchestrator.adapters.git_objects import ObjectStore, blob_sha, write_all
from orchestrator.adapters.git_refs import ZERO_SHA, RefStore
from orchestrator.errors import GitError

_INDEX_LOCK_WAIT_SECONDS = 3.0
_UNKNOWN = object()  # a work-tree path we must not touch (symlink, folder, unreadable)
_FILE_MODES = {b"100644": 0o666, b"100755": 0o777}
_ZERO = ZERO_SHA.encode()


@dataclass(frozen=True)
class Change:
    """One path a commit changed: blob sha before and after (None: absent)."""

    path: bytes
    old: bytes | None
    new: bytes | None


class Journal:
    """This instance's append-only list of changes whose work-tree/index sync is not finished."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.path = folder / f"{self.token}.journal"
        self._lock = threading.Lock()
        self._fd = -1
        self._open = 0  # commits appended and not yet synced

    def append(self, changes: Iterable[Change]) -> None:
        record = b"".join(b"%s %s\t%s\0" % (_hex(c.old), _hex(c.new), c.path) for c in changes)
        with self._lock:
            try:
                if self._fd < 0:
                    self._create()
                write_all(self._fd, record)
            except OSError as exc:
                raise GitError(f"cannot write {self.path}: {exc}; check disk space") from exc
            self._open += 1

    def _create(self) -> None:
        """Create the file locked: flock under a temp name, then rename into place."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held while this writer lives; repair() skips it
            os.replace(tmp, self.path)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def done(self, commits: int) -> None:
        """Mark commits as synced; the journal empties when none is left."""
        with self._lock:
            self._open = max(0, self._open - commits)
            if self._open == 0 and self._fd >= 0:
                os.ftruncate(self._fd, 0)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                if self._open == 0:
                    self.path.unlink(missing_ok=True)
                os.close(self._fd)
                self._fd = -1

    @staticmethod
    def parse(data: bytes) -> list[Change]:
        changes = []
        for record in data.split(b"\0"):
            head, tab, name = record.partition(b"\t")
            shas = head.split(b" ")
            if tab and name and len(shas) == 2 and all(len(s) == 40 for s in shas):
                old, new = (None if s == _ZERO else bytes.fromhex(s.decode()) for s in shas)
                changes.append(Change(name, old, new))
        return changes


class WorktreeSync:
    """Work-tree writes, index updates and crash repair for one repository."""

    def __init__(
        self, root: Path, git_dir: Path, objects: ObjectStore, refs: RefStore, runner: GitRunner
    ) -> None:
        self._root = os.fsencode(root)
        self._dir = git_dir / "orch"
        self._tmp = os.fsencode(self._dir / "tmp")
        self._objects = objects
        self._refs = refs
        self._runner = runner
        self._locks = {name: threading.Lock() for name in ("worktree", "index")}
        self._lock_fds: dict[str, int] = {}
        self._counter = itertools.count()
        self.journal = Journal(self._dir / "pending")

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """A lock held across threads (threading.Lock) and processes (flock, freed on death)."""
        with self._locks[name]:
            fd = self._lock_fds.get(name)
            if fd is None:
                self._dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(self._dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                self._lock_fds[name] = fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.journal.close()
        for name, lock in self._locks.items():
            with lock:
                fd = self._lock_fds.pop(name, None)
                if fd is not None:
                    os.close(fd)

    def _targets(self, paths: Iterable[bytes]) -> dict[bytes, tuple[bytes, bytes] | None]:
        """What the branch head holds at each path, read now."""
        head = self._refs.read_head()
        tree = self._objects.read_commit(bytes.fromhex(head))[0] if head else None
        return {p: self._objects.lookup(tree, tuple(p.split(b"/"))) for p in paths}

    # -- work tree ---------------------------------------------------------------------------

    def update_worktree(
        self, changes: Iterable[Change], contents: Mapping[bytes, bytes] = {}
    ) -> None:
        """Bring each path's file to the head's version, unless the user changed it meanwhile.

        A file is replaced only when it is missing or holds one of the versions the journal
        names (before/after) or the head's; anything else is the user's and stays as it is.
        """
        known: dict[bytes, set[bytes]] = {}
        for change in changes:
            known.setdefault(change.path, set()).update(s for s in (change.old, change.new) if s)
        with self._locked("worktree"):
            checked: set[bytes] = set()
            for path, target in self._targets(known).items():
                full = self._root + b"/" + path
                current = _read(full) if self._parents_ok(path, checked) else _UNKNOWN
                if current is _UNKNOWN:
                    continue
                current_sha = blob_sha(current) if isinstance(current, bytes) else None
                if target is not None:
                    known[path].add(target[1])
                if current_sha is not None and current_sha not in known[path]:
                    continue  # the user's own content
                if target is None or target[0] not in _FILE_MODES:
                    if current_sha is not None:
                        _remove(full, self._root)
                elif current_sha != target[1] and self._parents_ok(path, checked, create=True):
                    data = contents.get(target[1])
                    if data is None:
                        data = self._objects.read(target[1])[1]
                    self._write(full, data, _FILE_MODES[target[0]])

    def _parents_ok(self, path: bytes, checked: set[bytes], create: bool = False) -> bool:
        """False if a parent of path is a symlink or a file; create missing ones if asked."""
        parts = path.split(b"/")[:-1]
        for i in range(1, len(parts) + 1):
            rel = b"/".join(parts[:i])
            if rel in checked:
                continue
            full = self._root + b"/" + rel
            try:
                if not stat.S_ISDIR(os.lstat(full).st_mode):
                    return False
            except FileNotFoundError:
                if not create:
                    return True
                os.mkdir(full)
            checked.add(rel)
        return True

    def _write(self, path: bytes, data: bytes, mode: int) -> None:
        """Atomic write: a temp file in .git/orch/tmp (cheap to create) renamed over the path."""
        tmp = b"%s/%s-%d" % (self._tmp, self.journal.token.encode(), next(self._counter))
        try:
            _write_file(tmp, data, mode)
        except FileNotFoundError:
            os.makedirs(self._tmp, exist_ok=True)
            _write_file(tmp, data, mode)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            os.unlink(tmp)
            if exc.errno != errno.EXDEV:
                raise
            folder, _, name = path.rpartition(b"/")
            tmp = folder + b"/." + name + b".orch-tmp"  # .git on another file system
            _write_file(tmp, data, mode)
            os.replace(tmp, path)

    # -- index -------------------------------------------------------------------------------

    def update_index(self, paths: Iterable[bytes]) -> None:
        """Make the index hold the head's entry for each path, in one or two update-index runs.

        Paths whose file equals the head's blob go through `--stdin` so git records their stat
        data (status stays cheap); the rest (user-modified or kept files) through `--index-info`.
        """
        with self._locked("index"):
            hashed: list[bytes] = []
            info: list[bytes] = []
            checked: set[bytes] = set()
            for path, target in self._targets(dict.fromkeys(paths)).items():
                inside = self._parents_ok(path, checked)
                current = _read(self._root + b"/" + path) if inside else _UNKNOWN
                sha = blob_sha(current) if isinstance(current, bytes) else current
                if target is None:
                    if current is None:
                        hashed.append(path)
                    else:
                        info.append(b"0 %s\t%s" % (_ZERO, path))
                elif target[0] in _FILE_MODES and sha == target[1]:
                    hashed.append(path)
                else:
                    info.append(b"%s %s\t%s" % (target[0], target[1].hex().encode(), path))
            if hashed:
                self._update_index(["--add", "--remove", "--replace", "-z", "--stdin"], hashed)
            if info:
                self._update_index(["--replace", "-z", "--index-info"], info)

    def _update_index(self, args: list[str], records: list[bytes]) -> None:
        data = b"\0".join(records) + b"\0"
        deadline = time.monotonic() + _INDEX_LOCK_WAIT_SECONDS
        while True:
            proc = self._runner.run_status(["update-index", *args], input=data)
            if proc.returncode == 0:
                return
            if b"index.lock" not in proc.stderr or time.monotonic() > deadline:
                raise GitError(
                    f"could not update the index: {first_line(proc.stderr)}; the commits are "
                    "safe: retry once no other git command is running"
                )
            time.sleep(0.02)

    # -- repair ------------------------------------------------------------------------------

    def repair(self) -> None:
        """Redo the journals of writers that died (nobody holds their flock), then drop them."""
        try:
            folder = self.journal.folder
            journals = sorted([*folder.glob("*.journal"), *folder.glob("*.new")])
        except OSError:
            return
        for path in journals:
            if path == self.journal.path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its writer is alive and finishes its own work
                changes = Journal.parse(path.read_bytes())
                if changes:
                    self.update_worktree(changes)
                    self.update_index(c.path for c in changes)
                token = path.name.split(".")[0].encode()
                with contextlib.suppress(OSError):
                    for name in os.listdir(self._tmp):
                        if name.startswith(token + b"-"):
                            os.unlink(self._tmp + b"/" + name)
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)


def _hex(sha: bytes | None) -> bytes:
    return sha.hex().encode() if sha else _ZERO


def _read(path: bytes) -> bytes | None | object:
    """A file's bytes; None if missing; _UNKNOWN for a symlink, a folder or an unreadable path."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        return _UNKNOWN
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return _UNKNOWN
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write_file(path: bytes, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def _remove(path: bytes, root: bytes) -> None:
    os.unlink(path)
    folder = path.rpartition(b"/")[0]
    while len(folder) > len(root):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = folder.rpartition(b"/")[0]
