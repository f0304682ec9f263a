"""Pre-started interpreter sandboxes, so that opening a session does not wait for one.

A new sandbox costs a ``bwrap`` plus an interpreter start (tens of milliseconds); a
session taken from the pool costs a queue pop. Each pooled sandbox is started from
scratch in the background, handed to exactly one session and never returned: a closed
session's sandbox is destroyed, so nothing an episode did can reach another one. The
pool starts filling when the first session asks for a sandbox (that one starts cold),
keeps ``size`` sandboxes ready afterwards, and stops when closed or garbage-collected.

One long-lived thread starts every pooled sandbox. ``bwrap --die-with-parent`` (and the
worker's own parent-death signal without a sandbox) fire when the *thread* that started
the process exits, so the thread stays alive until the last sandbox it started is gone;
the sandboxes die with this process either way.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import weakref

from reasonloop.tools._python_session import Family, ProtocolError, WorkerChannel, WorkerSpec
from reasonloop.tools.sandbox import Sandbox, SandboxProcess, SandboxUnavailable

__all__ = ["Started", "WorkerPool"]

logger = logging.getLogger(__name__)

Started = tuple[Family, WorkerChannel, int]
"""A running sandbox with its first worker: ``(family, channel, worker ns pid)``."""

_RETRY_S = (0.1, 0.5, 2.0, 10.0)
"""Pauses after consecutive failed starts (the last one repeats)."""


class WorkerPool:
    """Keeps ``size`` fresh sandboxes with an idle worker ready; see the module docstring."""

    def __init__(self, sandbox: Sandbox, spec: WorkerSpec, size: int) -> None:
        self.sandbox, self.spec, self.size = sandbox, spec, size
        self._ready: collections.deque[Started] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._started: weakref.WeakSet[SandboxProcess] = weakref.WeakSet()
        self.stats = {"taken": 0, "missed": 0, "started": 0, "failed": 0}
        """Counters: sessions served from the pool, sessions that started cold, pooled starts, failed starts."""

    def take(self) -> Started | None:
        """A ready sandbox (removed from the pool for good), or ``None``: start one cold."""
        stale: list[Started] = []
        got: Started | None = None
        with self._cond:
            if self._closed or self.size < 1:
                return None
            while self._ready and got is None:
                item = self._ready.popleft()
                if item[0].proc.alive() and item[0].healthy(item[2]):
                    got = item
                else:
                    stale.append(item)
            self.stats["taken" if got else "missed"] += 1
            self._ensure_thread()
            self._cond.notify_all()
        for item in stale:
            _discard(item)
        return got

    def wait_ready(self, timeout_s: float) -> bool:
        """Block until ``size`` sandboxes are ready (or ``timeout_s`` passes); returns whether they are."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._ensure_thread()
            self._cond.notify_all()
            while len(self._ready) < self.size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return len(self._ready) >= self.size

    @property
    def ready(self) -> int:
        """How many sandboxes are waiting."""
        with self._cond:
            return len(self._ready)

    def close(self) -> None:
        """Destroy the waiting sandboxes and stop refilling (idempotent)."""
        with self._cond:
            self._closed = True
            items = list(self._ready)
            self._ready.clear()
            self._cond.notify_all()
        for item in items:
            _discard(item)

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._fill, name="reasonloop-python-pool", daemon=True)
            self._thread.start()

    def _fill(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._closed and len(self._ready) >= self.size:
                    self._cond.wait()
                if self._closed:
                    break
            try:
                item = Family.start(self.sandbox, self.spec)
            except SandboxUnavailable as exc:  # sessions start cold and report it
                logger.info("python sandbox pool stopped: %s", exc)
                break
            except (ProtocolError, OSError) as exc:
                failures += 1
                self.stats["failed"] += 1
                logger.warning("python sandbox pool: a sandbox failed to start (%s)", exc)
                time.sleep(_RETRY_S[min(failures, len(_RETRY_S)) - 1])
                continue
            failures = 0
            self.stats["started"] += 1
            self._started.add(item[0].proc)
            with self._cond:
                keep = not self._closed
                if keep:
                    self._ready.append(item)
                    self._cond.notify_all()
            if not keep:
                _discard(item)
        self._outlive_sandboxes()

    def _outlive_sandboxes(self) -> None:
        """Return only once every sandbox this thread started is gone (see the module docstring)."""
        while any(proc.alive() for proc in list(self._started)):
            time.sleep(0.5)


def _discard(item: Started) -> None:
    family, chan, _ = item
    chan.close()
    family.shutdown()
