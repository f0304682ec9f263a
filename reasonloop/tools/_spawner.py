"""Start child processes from one long-lived thread, so they die with the process, not a thread.

``bwrap --die-with-parent`` and the unsafe-mode worker both ask the kernel for a signal
when their parent dies (``PR_SET_PDEATHSIG``). The kernel's "parent" is the *thread*
that forked the child: a sandbox started from a short-lived thread (an
``asyncio.to_thread`` worker, retired when its event loop's executor shuts down) is
killed the moment that thread exits, and its session state is lost. Every sandbox is
therefore forked by one daemon thread that lives as long as the process does; the
caller waits for the :class:`subprocess.Popen` and then uses it from any thread.

The thread is per process: a forked child that starts a sandbox gets a thread of its own.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
from concurrent.futures import Future
from typing import Any, cast

__all__ = ["popen"]

_Job = tuple[tuple[Any, ...], dict[str, Any], "Future[subprocess.Popen[bytes]]"]


class _Spawner:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        if threading.current_thread() is self._thread:
            return cast("subprocess.Popen[bytes]", subprocess.Popen(*args, **kwargs))
        future: Future[subprocess.Popen[bytes]] = Future()
        with self._lock:
            if self._thread is None or self._pid != os.getpid():  # none yet, or inherited across a fork
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._serve, args=(self._jobs,), name="reasonloop-spawner",
                                                daemon=True)
                self._pid = os.getpid()
                self._thread.start()
            self._jobs.put((args, kwargs, future))
        try:
            return future.result()
        except BaseException:  # interrupted while waiting: nobody will own what gets started
            future.add_done_callback(_kill_orphan)
            raise

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[_Job]) -> None:
        while True:  # never returns: its children's parent thread must outlive them
            args, kwargs, future = jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(cast("subprocess.Popen[bytes]", subprocess.Popen(*args, **kwargs)))
            except BaseException as exc:  # the caller re-raises it
                future.set_exception(exc)


def _kill_orphan(future: Future[subprocess.Popen[bytes]]) -> None:
    if not future.cancelled() and future.exception() is None:
        proc = future.result()
        proc.kill()
        proc.wait()


_SPAWNER = _Spawner()


def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
    """:class:`subprocess.Popen` ``(*args, **kwargs)``, forked by the process's spawner thread."""
    return _SPAWNER.popen(*args, **kwargs)
