"""Talking to a running sandbox through its stdio, with a deadline and output caps."""

from __future__ import annotations

import os
import select
import selectors
import subprocess
import time

from reasonloop.tools._sandbox_proc import wait_exit

__all__ = ["communicate", "echo"]


def echo(popen: subprocess.Popen[bytes], line: bytes, *, timeout_s: float) -> bytes:
    """Send ``line`` to a running ``cat`` and return what it echoes (``b""`` when nothing)."""
    assert popen.stdin is not None and popen.stdout is not None
    try:
        popen.stdin.write(line)
        popen.stdin.flush()
        if select.select([popen.stdout], [], [], timeout_s)[0]:
            return popen.stdout.readline()
    except OSError:
        pass
    return b""


def communicate(
    popen: subprocess.Popen[bytes], data: bytes, deadline: float, cap: int
) -> tuple[tuple[bytes, bool], tuple[bytes, bool], bool]:
    """Feed stdin, read capped stdout/stderr until exit or ``deadline``; returns (out, err, timed_out)."""
    assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
    out_fd, err_fd, wfd = popen.stdout.fileno(), popen.stderr.fileno(), popen.stdin.fileno()
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    over = dict.fromkeys(bufs, False)
    sel = selectors.DefaultSelector()
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    view = memoryview(data)
    if view:
        os.set_blocking(wfd, False)
        sel.register(wfd, selectors.EVENT_WRITE)
    else:
        popen.stdin.close()
    open_reads, timed_out = 2, False
    while open_reads and not timed_out:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        for key, _ in sel.select(timeout=min(remaining, 0.5)):
            fd = key.fd
            if fd == wfd:
                try:
                    view = view[os.write(fd, view[: 1 << 16]) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:  # the program stopped reading: drop the rest
                    view = view[:0]
                if not view:
                    sel.unregister(fd)
                    popen.stdin.close()
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                sel.unregister(fd)
                open_reads -= 1
                continue
            room = cap - len(bufs[fd])
            bufs[fd] += chunk[: max(room, 0)]
            over[fd] = over[fd] or len(chunk) > room
    sel.close()
    if not timed_out:
        timed_out = not wait_exit(popen, max(deadline - time.monotonic(), 0.01))
    return (bytes(bufs[out_fd]), over[out_fd]), (bytes(bufs[err_fd]), over[err_fd]), timed_out
