"""The one way to run an external tool.

Every tool (bowtie2, samtools, SPAdes, HMMER, BLAST+) runs as a child in its own
process group, so a cancel, a timeout or a shutdown kills the whole tree (SPAdes
and bowtie2 both spawn helpers). Arguments are argv lists, never a shell string.
Pipes between tools are chained ``Popen`` objects, not ``bash -c``.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

#: How often a waiting runner looks at its cancel event and deadline (seconds).
POLL_INTERVAL = 0.1
#: Lines of stderr kept for error messages.
STDERR_TAIL_LINES = 20
#: Pipe buffer asked for a streamed tool, and the most read from it at once (Linux's default ceiling).
PIPE_BYTES = 1 << 20


class ToolError(RuntimeError):
    """A tool exited non-zero; ``stderr_tail`` holds its last lines."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr_tail: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        tail = f": {stderr_tail}" if stderr_tail else ""
        super().__init__(f"{os.path.basename(argv[0])} exited with code {returncode}{tail}")


class ToolTimeout(RuntimeError):
    """A tool ran past its time limit and was killed."""

    def __init__(self, argv: Sequence[str], timeout: float | None):
        super().__init__(f"{os.path.basename(argv[0])} ran longer than {timeout:g} s and was killed")


class ToolCancelled(RuntimeError):
    """The cancel event was set while the tool ran; the tool was killed."""

    def __init__(self, argv: Sequence[str]):
        super().__init__(f"{os.path.basename(argv[0])} was cancelled")


class _NeverSet:
    def is_set(self) -> bool:
        return False


@dataclass
class Limits:
    """When to stop waiting for a tool: a timeout in seconds and/or a cancel event."""

    timeout: float | None = None
    cancel: threading.Event | _NeverSet = _NeverSet()

    def __post_init__(self):
        self.deadline = None if self.timeout is None else time.monotonic() + self.timeout


def kill_group(proc: subprocess.Popen) -> None:
    """Kill the process group led by ``proc`` (TERM, then KILL after a grace period)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def kill_tools_using(folder: str | os.PathLike) -> int:
    """Kill the process groups of tools still working in ``folder``; return how many.

    Each tool leads a session of its own (``_start``), so a worker that dies, even by
    ``SIGKILL``, leaves its tools running. Before a rerun reuses the folder, whatever a dead
    run left there must stop writing into it. A process counts when it belongs to such a
    tool session and its working directory is in ``folder`` or an argument names a path in
    it. Reads Linux's ``/proc``; processes of other users are skipped.
    """
    root = os.path.realpath(folder)
    inside = (root + os.sep).encode()
    groups = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                group, session = (int(f) for f in handle.read().rpartition(b")")[2].split()[2:4])
            if group != session:  # not the session of a tool (nor of its children)
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except (OSError, ValueError):  # gone meanwhile, or not ours to read
            continue
        if cwd == root or cwd.startswith(root + os.sep) or any(inside in arg for arg in argv):
            groups.add(group)
    groups.discard(os.getpgrp())
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    return len(groups)


def _start(argv: Sequence[str], stdin=None, stdout=None, env=None, cwd=None) -> subprocess.Popen:
    return subprocess.Popen(
        [str(a) for a in argv],
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )


def _drain(stream: IO[bytes] | None, tail: collections.deque) -> threading.Thread:
    """Read a stderr pipe to its end in a thread, keeping the last lines."""
    assert stream is not None, "_start always pipes stderr"

    def read():
        for line in iter(stream.readline, b""):
            tail.append(line.decode(errors="replace").rstrip())
        stream.close()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _wait(procs: list[subprocess.Popen], argv: Sequence[str], limits: Limits) -> None:
    """Wait for every process; kill all of them on cancel or timeout."""
    while any(p.poll() is None for p in procs):
        if limits.cancel.is_set():
            for p in procs:
                kill_group(p)
            raise ToolCancelled(argv)
        if limits.deadline is not None and time.monotonic() > limits.deadline:
            for p in procs:
                kill_group(p)
            raise ToolTimeout(argv, limits.timeout)
        running = next(p for p in procs if p.poll() is None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            running.wait(timeout=POLL_INTERVAL)  # returns as soon as the tool exits


def run(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    stdout: IO | None = None,
    env: dict | None = None,
    cwd: str | None = None,
) -> None:
    """Run one tool to completion; raise ``ToolError``/``ToolTimeout``/``ToolCancelled``.

    ``stdout`` is an open binary file to write the tool's output to (default: discarded).
    """
    pipeline([argv], timeout=timeout, cancel=cancel, stdout=stdout, env=env, cwd=cwd)


def pipeline(
    commands: Sequence[Sequence[str]],
    *,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    stdout: IO | None = None,
    env: dict | None = None,
    cwd: str | None = None,
) -> None:
    """Run ``a | b | c`` as chained processes; the last one writes to ``stdout``."""
    limits = Limits(timeout, cancel or _NeverSet())
    procs: list[subprocess.Popen] = []
    tails: list[collections.deque] = []
    drains: list[threading.Thread] = []
    previous: subprocess.Popen | None = None
    try:
        for i, argv in enumerate(commands):
            last = i == len(commands) - 1
            out = (stdout if stdout is not None else subprocess.DEVNULL) if last else subprocess.PIPE
            proc = _start(argv, stdin=previous.stdout if previous else None, stdout=out, env=env, cwd=cwd)
            if previous is not None and previous.stdout is not None:
                previous.stdout.close()  # so the upstream tool gets SIGPIPE if this one dies
            tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
            procs.append(proc)
            tails.append(tail)
            drains.append(_drain(proc.stderr, tail))
            previous = proc
        _wait(procs, commands[-1], limits)
    except BaseException:
        for p in procs:
            kill_group(p)
        raise
    for thread in drains:
        thread.join(timeout=5)
    for argv, proc, tail in zip(commands, procs, tails, strict=False):
        if proc.returncode != 0:
            raise ToolError(argv, proc.returncode, "\n".join(tail))


def stream_lines(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    env: dict | None = None,
    cwd: str | None = None,
) -> Iterator[bytes]:
    """Run a tool and yield its stdout line by line (bytes, with the newline).

    The tool is killed if the consumer stops early, on cancel and on timeout. Used
    to parse SAM from bowtie2 without ever holding it whole.
    """
    yield from _stream(argv, iter, timeout=timeout, cancel=cancel, env=env, cwd=cwd)


def stream_chunks(
    argv: Sequence[str],
    *,
    chunk_bytes: int = PIPE_BYTES,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    env: dict | None = None,
    cwd: str | None = None,
) -> Iterator[bytes]:
    """Like :func:`stream_lines`, but yield stdout as it arrives, up to ``chunk_bytes`` at a time.

    The pipe is widened to ``PIPE_BYTES`` where Linux allows it, so the tool writes on while
    the consumer parses a chunk instead of waiting for it.
    """

    def chunks(stdout: IO[bytes]) -> Iterator[bytes]:
        read = stdout.read1  # type: ignore[attr-defined]  # a BufferedReader: whatever is there, at most n
        return iter(lambda: read(chunk_bytes), b"")

    yield from _stream(argv, chunks, timeout=timeout, cancel=cancel, env=env, cwd=cwd)


def _widen_pipe(stream: IO[bytes]) -> None:
    """Grow a pipe's buffer to ``PIPE_BYTES`` (Linux; at most /proc/sys/fs/pipe-max-size)."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)


def _stream(
    argv: Sequence[str],
    read: Callable[[IO[bytes]], Iterable[bytes]],
    *,
    timeout: float | None,
    cancel: threading.Event | None,
    env: dict | None,
    cwd: str | None,
) -> Iterator[bytes]:
    """Run a tool and yield what ``read`` makes of its stdout; kill it on cancel, timeout or an early stop."""
    limits = Limits(timeout, cancel or _NeverSet())
    proc = _start(argv, stdout=subprocess.PIPE, env=env, cwd=cwd)
    assert proc.stdout is not None  # asked for a pipe
    _widen_pipe(proc.stdout)
    tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
    drain = _drain(proc.stderr, tail)
    watcher_done = threading.Event()

    def watch():
        # The consumer may block on a read; a watcher kills the tool on cancel or timeout.
        while not watcher_done.wait(POLL_INTERVAL):
            expired = limits.deadline is not None and time.monotonic() > limits.deadline
            if limits.cancel.is_set() or expired:
                kill_group(proc)
                return

    threading.Thread(target=watch, daemon=True).start()
    try:
        yield from read(proc.stdout)
        proc.wait()
    finally:
        watcher_done.set()
        kill_group(proc)
        proc.stdout.close()
        drain.join(timeout=5)
    if limits.cancel.is_set():
        raise ToolCancelled(argv)
    if limits.deadline is not None and time.monotonic() > limits.deadline and proc.returncode != 0:
        raise ToolTimeout(argv, limits.timeout)
    if proc.returncode != 0:
        raise ToolError(argv, proc.returncode, "\n".join(tail))
