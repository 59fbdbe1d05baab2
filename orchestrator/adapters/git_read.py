"""Reading history and blob contents in bulk: one git process per call, streamed."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from orchestrator.adapters.git_cmd import GitRunner
from orchestrator.errors import GitError


@dataclass(frozen=True)
class FileChange:
    """One change to one file in one commit; blob is the new blob, or the removed one for 'D'."""

    commit: str
    status: str  # 'A' | 'M' | 'D' | 'T'
    path: str
    blob: str


def decode_path(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


def stream_blobs(runner: GitRunner, blobs: list[tuple[str, str]]) -> Iterator[tuple[str, bytes]]:
    """One `git cat-file --batch` for all blobs, fed by a thread so the pipes never block."""
    if not blobs:
        return
    proc = runner.popen(["cat-file", "--batch"], stdin=True)
    stdin, stdout = proc.stdin, proc.stdout
    assert stdin is not None and stdout is not None

    def feed() -> None:
        with contextlib.suppress(OSError, ValueError):
            stdin.write(b"".join(sha.encode() + b"\n" for _, sha in blobs))
            stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        for path, sha in blobs:
            header = stdout.readline().split()
            if len(header) != 3:
                raise GitError(f"blob {sha} of {path} is missing; run 'git fsck'")
            yield path, stdout.read(int(header[2]) + 1)[:-1]
    finally:
        proc.kill()
        feeder.join()
        proc.wait()
        for stream in (stdout, proc.stderr):
            if stream is not None:
                stream.close()


def parse_log(tokens: Iterator[bytes]) -> Iterator[FileChange]:
    commit = ""
    meta: list[bytes] | None = None
    for token in tokens:
        if meta is not None:
            old, new, status = meta[2].decode(), meta[3].decode(), meta[4].decode()[:1]
            yield FileChange(commit, status, decode_path(token), old if status == "D" else new)
            meta = None
            continue
        token = token.lstrip(b"\n")
        if token.startswith(b":"):
            meta = token.split(b" ")
        elif token:
            commit = token.decode()
