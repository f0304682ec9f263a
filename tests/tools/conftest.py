"""Fixtures for the sandbox and Python tool tests: a real bubblewrap sandbox or a skip."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from reasonloop.tools.python import PythonConfig, PythonSession
from reasonloop.tools.sandbox import Sandbox, SandboxConfig

CANARY = "reasonloop-canary-7f3a9c"


def _unavailable() -> str | None:
    return Sandbox(SandboxConfig()).unavailable_reason()


@pytest.fixture(scope="session")
def sandbox_required() -> None:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(f"sandbox unavailable: {reason}")


@pytest.fixture(scope="session", autouse=False)
def canary_env() -> Iterator[str]:
    """A secret in the parent's environment that must never be readable inside."""
    old = os.environ.get("REASONLOOP_TEST_SECRET")
    os.environ["REASONLOOP_TEST_SECRET"] = CANARY
    yield CANARY
    if old is None:
        os.environ.pop("REASONLOOP_TEST_SECRET", None)
    else:
        os.environ["REASONLOOP_TEST_SECRET"] = old


@pytest.fixture
def session(sandbox_required: None, canary_env: str) -> Iterator[PythonSession]:
    s = PythonSession.open(PythonConfig(timeout_s=3.0))
    yield s
    s.close()


class Procs:
    """Process checks by /proc scans of the host (no psutil)."""

    @staticmethod
    def strays(s: PythonSession) -> set[int]:
        """Host pids in the session's sandbox that are neither the sandbox's own nor a worker."""
        family = s._family
        if family is None:
            return set()
        expected = {family.proc.pid, family.proc.init_pid(), family.holder[1], *family.workers.values()}
        return Procs.alive(family.proc.members() - expected)

    @staticmethod
    def members(s: PythonSession) -> set[int]:
        family = s._family
        return set() if family is None else family.proc.members()

    @staticmethod
    def alive(pids: set[int]) -> set[int]:
        out = set()
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            if stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z":
                out.add(pid)
        return out

    @staticmethod
    def zombies_of(pid: int) -> set[int]:
        """Zombie children of ``pid`` (left unreaped)."""
        out = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            if fields[0] == b"Z" and int(fields[1]) == pid:
                out.add(int(entry))
        return out


@pytest.fixture
def procs() -> type[Procs]:
    return Procs
