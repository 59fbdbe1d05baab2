"""Git objects in-process: loose-object writes, reads, tree edits over a cache of parsed trees."""

from __future__ import annotations

import datetime
import hashlib
import itertools
import os
import re
import secrets
import subprocess
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from orchestrator.adapters.git_cmd import GitRunner
from orchestrator.errors import GitError

TREE_MODE = b"40000"
BLOB_MODE = b"100644"
Entry = tuple[bytes, bytes]  # (mode, 20-byte binary sha)
Tree = dict[bytes, Entry]
PathKey = tuple[bytes, ...]  # a repository path split on '/'

_TREE_CACHE_ENTRIES = 250_000  # parsed tree entries kept in memory (~60 MB at most)
_counter = itertools.count()
_TOKEN = secrets.token_hex(4)
_RAW_DATE = re.compile(r"@?(\d+) ([+-]\d{4})")


def blob_sha(data: bytes) -> bytes:
    """The binary sha git gives a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).digest()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def parse_tree(body: bytes) -> Tree:
    tree: Tree = {}
    pos, end = 0, len(body)
    while pos < end:
        space = body.index(b" ", pos)
        nul = body.index(b"\0", space)
        tree[body[space + 1 : nul]] = (body[pos:space], body[nul + 1 : nul + 21])
        pos = nul + 21
    return tree


def serialize_tree(tree: Tree) -> bytes:
    def key(name: bytes) -> bytes:
        return name + b"/" if tree[name][0] == TREE_MODE else name

    return b"".join(
        b"%s %s\0%s" % (tree[name][0], name, tree[name][1]) for name in sorted(tree, key=key)
    )


class ObjectStore:
    """Reads and writes objects of one repository; keeps parsed trees and commits in memory.

    Writes are loose objects made here (zlib + rename), never a subprocess. Reads try the loose
    file first and fall back to one long-lived `git cat-file --batch` (packs, alternates).
    """

    def __init__(self, objects_dir: Path, runner: GitRunner, compression: int = 1) -> None:
        self._dir = objects_dir
        self._runner = runner
        self._level = compression
        self._lock = threading.RLock()
        self._trees: OrderedDict[bytes, Tree] = OrderedDict()
        self._tree_entries = 0
        self._commits: dict[bytes, tuple[bytes, list[bytes]]] = {}
        self._batch: subprocess.Popen[bytes] | None = None
        self.loose_written = 0

    # -- raw objects -------------------------------------------------------------------------

    def write(self, kind: bytes, body: bytes) -> bytes:
        """Store one object (if absent) and return its binary sha."""
        raw = b"%s %d\0" % (kind, len(body)) + body
        sha = hashlib.sha1(raw).digest()
        hexsha = sha.hex()
        folder = self._dir / hexsha[:2]
        final = folder / hexsha[2:]
        if final.exists():
            return sha
        data = zlib.compress(raw, self._level)
        # The temp file lives in objects/ itself, not in the fan-out folder: creating files in
        # freshly made folders was 10x slower on ext4 here (inode allocation), a rename is not.
        tmp = self._dir / f"tmp_obj_orch_{os.getpid()}_{_TOKEN}_{next(_counter)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            try:
                os.replace(tmp, final)
            except FileNotFoundError:
                folder.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise GitError(
                f"cannot write object {hexsha}: {exc}; check disk space and permissions"
            ) from exc
        self.loose_written += 1
        return sha

    def read(self, sha: bytes) -> tuple[bytes, bytes]:
        """(kind, body) of an object; GitError when the repository does not hold it."""
        hexsha = sha.hex()
        try:
            raw = zlib.decompress((self._dir / hexsha[:2] / hexsha[2:]).read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return self._read_batch(hexsha)
        except (OSError, zlib.error) as exc:
            raise GitError(f"cannot read object {hexsha}: {exc}; run 'git fsck'") from exc
        header, _, body = raw.partition(b"\0")
        return header.split(b" ", 1)[0], body

    def _read_batch(self, hexsha: str) -> tuple[bytes, bytes]:
        with self._lock:
            proc = self._batch
            if proc is None or proc.poll() is not None:
                proc = self._batch = self._runner.popen(["cat-file", "--batch"], stdin=True)
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(hexsha.encode() + b"\n")
                proc.stdin.flush()
                header = proc.stdout.readline().split()
                if len(header) != 3:
                    raise GitError(
                        f"object {hexsha} is missing; run 'git fsck' to check the repository"
                    )
                body = proc.stdout.read(int(header[2]) + 1)[:-1]
            except (OSError, ValueError) as exc:
                self.close()
                raise GitError(f"cannot read object {hexsha}: {exc}; retry") from exc
            return header[1], body

    def close(self) -> None:
        with self._lock:
            proc, self._batch = self._batch, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            proc.kill()
            proc.wait()

    # -- trees and commits -------------------------------------------------------------------

    def read_tree(self, sha: bytes) -> Tree:
        with self._lock:
            tree = self._trees.get(sha)
            if tree is not None:
                self._trees.move_to_end(sha)
                return tree
        kind, body = self.read(sha)
        if kind != b"tree":
            raise GitError(f"object {sha.hex()} is a {kind.decode()}, not a tree; run 'git fsck'")
        tree = parse_tree(body)
        self._remember(sha, tree)
        return tree

    def _remember(self, sha: bytes, tree: Tree) -> None:
        with self._lock:
            if sha in self._trees:
                return
            self._trees[sha] = tree
            self._tree_entries += len(tree) + 1
            while self._tree_entries > _TREE_CACHE_ENTRIES and len(self._trees) > 1:
                _, old = self._trees.popitem(last=False)
                self._tree_entries -= len(old) + 1

    def write_tree(self, tree: Tree) -> bytes:
        sha = self.write(b"tree", serialize_tree(tree))
        self._remember(sha, tree)
        return sha

    def read_commit(self, sha: bytes) -> tuple[bytes, list[bytes]]:
        """(tree, parents) of a commit."""
        cached = self._commits.get(sha)
        if cached is not None:
            return cached
        kind, body = self.read(sha)
        if kind != b"commit":
            raise GitError(f"object {sha.hex()} is a {kind.decode()}, not a commit; run 'git fsck'")
        tree, parents = b"", []
        for line in body.split(b"\n"):
            if not line:
                break
            if line.startswith(b"tree "):
                tree = bytes.fromhex(line[5:].decode())
            elif line.startswith(b"parent "):
                parents.append(bytes.fromhex(line[7:].decode()))
        if len(self._commits) > 10_000:
            self._commits.clear()
        self._commits[sha] = (tree, parents)
        return tree, parents

    def write_commit(
        self, tree: bytes, parents: list[bytes], author: bytes, committer: bytes, message: bytes
    ) -> bytes:
        lines = [b"tree " + tree.hex().encode()]
        lines += [b"parent " + p.hex().encode() for p in parents]
        lines += [b"author " + author, b"committer " + committer, b"", message]
        sha = self.write(b"commit", b"\n".join(lines))
        self._commits[sha] = (tree, parents)
        return sha

    def lookup(self, tree: bytes | None, path: PathKey) -> Entry | None:
        """The entry at path inside tree (None when absent or when a parent is not a tree)."""
        entry: Entry | None = (TREE_MODE, tree) if tree is not None else None
        for name in path:
            if entry is None or entry[0] != TREE_MODE:
                return None
            entry = self.read_tree(entry[1]).get(name)
        return entry

    def edit_tree(
        self, base: bytes | None, changes: Mapping[PathKey, Entry | None]
    ) -> bytes | None:
        """Write the tree that is base with changes applied (None: delete); None if it ends empty.

        Only the trees along changed paths are rewritten; the others keep their sha.
        """
        return self._edit(base, changes, b"")

    def _edit(
        self, base: bytes | None, changes: Mapping[PathKey, Entry | None], where: bytes
    ) -> bytes | None:
        original = self.read_tree(base) if base is not None else {}
        tree = dict(original)
        nested: dict[bytes, dict[PathKey, Entry | None]] = {}
        for path, entry in changes.items():
            name = path[0]
            if len(path) > 1:
                nested.setdefault(name, {})[path[1:]] = entry
                continue
            old = tree.get(name)
            if old is not None and old[0] == TREE_MODE:
                raise _conflict(where + name, "a folder")
            if entry is None:
                tree.pop(name, None)
            else:
                tree[name] = entry
        for name, sub in nested.items():
            if changes.get((name,)) is not None:
                raise _conflict(where + name, "written as a file in the same commit")
            old = tree.get(name)
            if old is not None and old[0] != TREE_MODE:
                if all(entry is None for entry in sub.values()):
                    continue
                raise _conflict(where + name, "a file")
            new = self._edit(old[1] if old else None, sub, where + name + b"/")
            if new is None:
                tree.pop(name, None)
            else:
                tree[name] = (TREE_MODE, new)
        if not tree:
            return None
        if base is not None and tree == original:
            return base
        return self.write_tree(tree)


def _conflict(path: bytes, what: str) -> GitError:
    name = path.decode("utf-8", "replace")
    return GitError(f"cannot write under '{name}': it is {what}; choose paths that do not clash")


def path_key(path: str) -> PathKey:
    """Split a repository-relative posix path, refusing anything that could leave the work tree."""
    why = ""
    if not isinstance(path, str) or not path:
        why = "it is empty"
    elif path.startswith("/"):
        why = "it is absolute"
    elif "\0" in path or "\\" in path:
        why = "it holds a NUL or a backslash"
    else:
        for part in path.split("/"):
            if part in ("", ".", ".."):
                why = "it has an empty, '.' or '..' part"
            elif part.lower() == ".git":
                why = "it points into .git"
    if why:
        raise GitError(
            f"invalid path {path!r}: {why}; use a relative path with '/' inside the repository"
        )
    return tuple(part.encode("utf-8", "surrogateescape") for part in path.split("/"))


def _date(value: str | None, role: str) -> str:
    """'<seconds> <+hhmm>': now, or GIT_<ROLE>_DATE in raw ('1700000000 +0100') or ISO form."""
    if not value:
        seconds = int(time.time())
        offset = time.localtime(seconds).tm_gmtoff
    elif match := _RAW_DATE.fullmatch(value.strip()):
        return f"{match[1]} {match[2]}"
    else:
        try:
            when = datetime.datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise GitError(
                f"cannot read GIT_{role}_DATE={value!r}; use '<unix-seconds> <+hhmm>'"
            ) from exc
        when = when if when.tzinfo else when.astimezone()
        seconds = int(when.timestamp())
        delta = when.utcoffset()
        offset = int(delta.total_seconds()) if delta else 0
    sign = "-" if offset < 0 else "+"
    return f"{seconds} {sign}{abs(offset) // 3600:02d}{abs(offset) % 3600 // 60:02d}"


def ident(role: str, config: Mapping[str, str]) -> bytes:
    """'Name <email> seconds +hhmm' for AUTHOR or COMMITTER: env first, then config, as git does."""
    low = role.lower()
    name = (
        os.environ.get(f"GIT_{role}_NAME") or config.get(f"{low}.name") or config.get("user.name")
    )
    email = (
        os.environ.get(f"GIT_{role}_EMAIL")
        or config.get(f"{low}.email")
        or config.get("user.email")
        or os.environ.get("EMAIL")
    )
    clean = re.compile(r"[<>\n]")
    name = clean.sub("", name or "orch").strip() or "orch"
    email = clean.sub("", email or "orch@localhost").strip()
    return f"{name} <{email}> {_date(os.environ.get(f'GIT_{role}_DATE'), role)}".encode()
