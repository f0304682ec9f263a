"""A :class:`ProcessRunner` for the Z3 checker on top of the bubblewrap sandbox.

The checker's local runner gives rlimits, a scrubbed environment and a wall-clock
kill; this one adds the namespaces, seccomp filter and cgroup limits of
:mod:`reasonloop.tools.sandbox`. The Python installation (which holds the ``z3``
binary of the ``z3-solver`` wheel) is mounted read-only at the same paths, so the
argv the checker builds works unchanged inside.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from reasonloop.tools._smt_run import Limits, ProcessRunner, RunOutcome

if TYPE_CHECKING:
    from reasonloop.tools.sandbox import Sandbox, SandboxConfig

__all__ = ["sandbox_runner"]

_INSIDE_PREFIX = "/opt/reasonloop-prefix"


def sandbox_runner(base: SandboxConfig | None = None) -> ProcessRunner:
    """A runner that starts every checker process in a fresh sandbox.

    Fails closed: when the sandbox cannot start, the outcome carries the reason in
    ``start_error`` (the checker reports it as a ``setup`` error) and nothing runs.

    Args:
        base: Sandbox settings; the checker's limits replace its time, memory, CPU and
            output limits per call.
    """
    from reasonloop.tools.sandbox import Sandbox, SandboxConfig, SandboxStatus

    base = base or SandboxConfig()
    # the sandbox's work dir is mounted at /work, which can hide a prefix below it: mount
    # the Python prefix (venv) elsewhere and translate the argv's paths
    inside = _INSIDE_PREFIX
    others = dict.fromkeys(p for p in (sys.base_prefix, sys.exec_prefix) if p != sys.prefix)
    mounts = ((sys.prefix, inside), *((path, path) for path in others))
    boxes: dict[Limits, Sandbox] = {}  # one per distinct limits, so the availability probe runs once

    def run(argv: Sequence[str], *, stdin: bytes, limits: Limits) -> RunOutcome:
        box = boxes.get(limits)
        if box is None:
            config = replace(
                base,
                timeout_s=limits.wall_s,
                memory_mb=limits.address_space_mb,
                cpu_s=limits.cpu_s,
                max_output_bytes=limits.max_output_bytes,
                file_size_mb=1,
                ro_binds=(*base.ro_binds, *mounts),
            )
            box = boxes[limits] = Sandbox(config)
        moved = [inside + arg[len(sys.prefix) :] if arg.startswith(sys.prefix + "/") else arg for arg in argv]
        result = box.run(moved, stdin=stdin, timeout_s=limits.wall_s)
        if result.status is SandboxStatus.REFUSED:
            return RunOutcome(
                returncode=None, stdout=b"", stderr=b"", timed_out=False, output_truncated=False,
                duration_s=result.duration_s, start_error=result.killed_reason or "the sandbox could not start",
            )  # fmt: skip
        return RunOutcome(
            returncode=result.exit_code,
            stdout=result.stdout.encode("utf-8", "replace"),
            stderr=result.stderr.encode("utf-8", "replace"),
            timed_out=result.status is SandboxStatus.TIMEOUT,
            output_truncated=result.stdout_truncated or result.stderr_truncated,
            duration_s=result.duration_s,
        )

    return run
