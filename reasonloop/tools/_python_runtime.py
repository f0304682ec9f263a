"""What the interpreter sessions of one configuration share: mounts, worker spec, pool.

Internal to :mod:`reasonloop.tools.python`.
"""

from __future__ import annotations

import functools
import re
import sys
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from reasonloop.errors import ConfigError
from reasonloop.tools._python_pool import WorkerPool
from reasonloop.tools._python_session import SITE_PATH, WORKER_PATH, Family, WorkerChannel, WorkerSpec
from reasonloop.tools.sandbox import Sandbox

if TYPE_CHECKING:
    from reasonloop.tools.python import PythonConfig

__all__ = ["Runtime"]


@functools.lru_cache(maxsize=32)
def _package_binds(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Read-only mounts for the distributions ``names`` and their requirements.

    Cached: walking every installed file of numpy and sympy takes ~0.1 s, and every
    new session of a configuration needs the same answer.
    """
    from importlib import metadata

    binds: dict[str, str] = {}
    seen: set[str] = set()
    stack = [(n, True) for n in names]
    while stack:
        name, required = stack.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if required:
                raise ConfigError(f"PythonConfig.packages: {name!r} is not installed for {sys.executable}") from None
            continue
        for entry in dist.files or ():
            top = entry.parts[0] if entry.parts else ""
            if not top or top in ("..", "__pycache__") or top.endswith((".dist-info", ".egg-info", ".pth")):
                continue
            host = Path(str(dist.locate_file(top)))
            if host.exists() and "/" not in top:
                binds[str(host)] = f"{SITE_PATH}/{top}"
        for req in dist.requires or ():
            if "extra ==" in req or "extra==" in req:
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
            if match:
                stack.append((match.group(1), False))
    return tuple(sorted(binds.items()))


class Runtime:
    """What the sessions of one configuration share: the sandbox, the worker spec and the pool."""

    def __init__(self, config: PythonConfig, *, pooled: bool = False) -> None:
        self.config = config
        self.sandbox = Sandbox(config.sandbox)
        exe = str(config.python)
        prefix = Path(exe).resolve().parent.parent
        binds: list[tuple[str, str]] = []
        if not str(prefix).startswith("/usr/"):
            binds.append((str(prefix), str(prefix)))
        worker = str(Path(__file__).with_name("_python_worker.py"))
        binds.append((worker, WORKER_PATH))
        packages = _package_binds(tuple(config.packages))
        binds += packages
        cap = config.sandbox.max_output_bytes
        self.spec = WorkerSpec(python=exe, ro_binds=tuple(binds), max_output_bytes=cap,
                               max_reply_bytes=20 * cap + (1 << 20), host_worker=worker,
                               host_site=tuple(sorted({str(Path(h).parent) for h, _ in packages})))  # fmt: skip
        self.pool: WorkerPool | None = None
        if pooled and config.pool_size > 0:
            self.pool = WorkerPool(self.sandbox, self.spec, config.pool_size)
            weakref.finalize(self, self.pool.close)

    def start(self) -> tuple[Family, WorkerChannel, int]:
        """A sandbox with an idle worker: a pooled one when ready, else a new one."""
        started = self.pool.take() if self.pool is not None else None
        return started or Family.start(self.sandbox, self.spec)
