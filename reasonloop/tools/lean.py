"""The Lean 4 checker: a theorem and its proof in, errors with positions and open goals out.

Runs through `lean-interact <https://github.com/augustepoiroux/LeanInteract>`_ against a
Lean toolchain on this machine (the ``lean`` extra). lean-interact's default setup
git-clones its REPL at run time, which cannot work offline, so the checker only ever uses
a local REPL checkout (``repl_path``, already built with ``lake build``) and, optionally, a
local Lean project (``project_dir``, e.g. one that depends on Mathlib). Both can come from
the environment: ``REASONLOOP_LEAN_REPL`` and ``REASONLOOP_LEAN_PROJECT``.

Installing a toolchain: ``curl https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -sSf | sh``,
then ``git clone https://github.com/leanprover-community/repl && cd repl && lake build``,
and ``pip install 'reasonloop[lean]'``.

Verdicts: ``proved`` (no error, no ``sorry``), ``incomplete`` (no error, but goals left
open with ``sorry``), ``error`` (Lean rejected it, or the checker could not run).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from reasonloop.tools.base import Tool, tool
from reasonloop.trajectory.schema import ToolResult, ToolStatus

__all__ = ["LeanChecker", "LeanConfig", "LeanMessage", "LeanResult", "check_lean", "classify_response", "lean_tool", "lean_unavailable"]

LeanVerdict = Literal["proved", "incomplete", "error"]
MAX_CODE_CHARS = 100_000
_UNSOLVED = re.compile(r"unsolved goals\s*\n(.*)", re.DOTALL)


@dataclass(frozen=True, kw_only=True)
class LeanConfig:
    """Where the Lean REPL and project are, and the limits of one check."""

    repl_path: Path | None = field(default_factory=lambda: _env_path("REASONLOOP_LEAN_REPL"))
    """A local, built checkout of the Lean REPL (never cloned at run time)."""
    project_dir: Path | None = field(default_factory=lambda: _env_path("REASONLOOP_LEAN_PROJECT"))
    """A local Lean project to check in (its dependencies, e.g. Mathlib, become importable)."""
    lake_path: str = "lake"
    """The ``lake`` executable."""
    timeout_s: float = 60.0
    """Wall-clock limit of one check."""
    memory_mb: int | None = 8192
    """Memory limit of the Lean server (Linux)."""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if self.memory_mb is not None and self.memory_mb < 256:
            raise ValueError("memory_mb must be >= 256")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


class LeanMessage(BaseModel):
    """One message Lean reported, with its position (1-based lines, 0-based columns)."""

    severity: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    text: str


class LeanResult(BaseModel):
    """The outcome of one check."""

    verdict: LeanVerdict
    messages: list[LeanMessage] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list)
    """Goals left open: at each ``sorry``, and those Lean reports as unsolved."""
    message: str = ""
    duration_s: float = 0.0

    def to_text(self) -> str:
        """What the model reads."""
        lines = [f"verdict: {self.verdict}"]
        if self.message:
            lines.append(self.message)
        for m in self.messages:
            lines.append(f"{m.severity} at line {m.line}, column {m.column}: {m.text}")
        for g in self.goals:
            lines.append(f"open goal:\n{g}")
        return "\n".join(lines)


def lean_unavailable(config: LeanConfig) -> str | None:
    """Why the checker cannot run here (``None`` when it can)."""
    try:
        import lean_interact  # noqa: F401
    except ImportError:
        return "lean-interact is not installed: pip install 'reasonloop[lean]'"
    if shutil.which(config.lake_path) is None:
        return f"no Lean toolchain: {config.lake_path!r} is not on PATH (install elan, see reasonloop.tools.lean)"
    if config.repl_path is None or not config.repl_path.is_dir():
        return "no local Lean REPL: set REASONLOOP_LEAN_REPL (or LeanConfig.repl_path) to a built REPL checkout"
    if config.project_dir is not None and not config.project_dir.is_dir():
        return f"the Lean project {config.project_dir} does not exist"
    return None


def classify_response(response: dict[str, Any]) -> LeanResult:
    """Turn a REPL response (as JSON, field names as the REPL writes them) into a result."""
    if set(response) == {"message"}:
        return LeanResult(verdict="error", message=f"Lean REPL error: {response['message']}")
    messages: list[LeanMessage] = []
    goals: list[str] = []
    for raw in response.get("messages") or []:
        pos, end = raw.get("pos") or {}, raw.get("endPos") or {}
        text = str(raw.get("data", ""))
        messages.append(LeanMessage(
            severity=str(raw.get("severity", "error")), line=int(pos.get("line", 0)), column=int(pos.get("column", 0)),
            end_line=end.get("line"), end_column=end.get("column"), text=text,
        ))
        if (m := _UNSOLVED.match(text)) is not None:
            goals.append(m.group(1).strip())
    for sorry in response.get("sorries") or []:
        goals.append(str(sorry.get("goal", "")).strip())
    if any(m.severity == "error" for m in messages):
        return LeanResult(verdict="error", messages=messages, goals=goals, message="Lean rejected the proof")
    if response.get("sorries") or any("declaration uses 'sorry'" in m.text for m in messages):
        return LeanResult(verdict="incomplete", messages=messages, goals=goals, message="the proof has open goals")
    return LeanResult(verdict="proved", messages=messages, goals=goals)


class LeanChecker:
    """A Lean REPL kept warm between checks (started on the first check, thread-safe)."""

    def __init__(self, config: LeanConfig | None = None) -> None:
        self.config = config or LeanConfig()
        self._server: Any = None
        self._lock = threading.Lock()

    def _start(self) -> Any:
        from lean_interact import AutoLeanServer, LeanREPLConfig, LocalProject

        cfg = self.config
        project = LocalProject(directory=str(cfg.project_dir)) if cfg.project_dir is not None else None
        repl = LeanREPLConfig(
            project=project, local_repl_path=str(cfg.repl_path), build_repl=False,
            lake_path=cfg.lake_path, memory_hard_limit_mb=cfg.memory_mb,
        )
        return AutoLeanServer(repl)

    def check(self, code: str) -> LeanResult:
        """Check ``code`` (statements, definitions and proofs); never raises for what it contains."""
        start = time.monotonic()
        if not isinstance(code, str) or not code.strip():
            return LeanResult(verdict="error", message="empty Lean input")
        if len(code) > MAX_CODE_CHARS:
            return LeanResult(verdict="error", message=f"Lean input longer than {MAX_CODE_CHARS} characters")
        reason = lean_unavailable(self.config)
        if reason is not None:
            return LeanResult(verdict="error", message=reason)
        from lean_interact import Command

        with self._lock:
            try:
                if self._server is None:
                    self._server = self._start()
                response = self._server.run(Command(cmd=code), timeout=self.config.timeout_s)
                payload = response.model_dump(by_alias=True, exclude_none=True)
            except TimeoutError:
                self.close()
                return LeanResult(verdict="error", message=f"Lean did not finish within {self.config.timeout_s:g} s",
                                  duration_s=time.monotonic() - start)
            except Exception as exc:  # a crashed REPL is restarted on the next check
                self.close()
                return LeanResult(verdict="error", message=f"the Lean REPL failed: {type(exc).__name__}: {exc}",
                                  duration_s=time.monotonic() - start)
        return classify_response(payload).model_copy(update={"duration_s": time.monotonic() - start})

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            try:
                server.kill()
            except Exception:  # already gone
                pass


def check_lean(code: str, config: LeanConfig | None = None) -> LeanResult:
    """Check once with a fresh REPL (for a reward; keep a :class:`LeanChecker` for many)."""
    checker = LeanChecker(config)
    try:
        return checker.check(code)
    finally:
        checker.close()


def lean_tool(config: LeanConfig | None = None, *, name: str = "lean") -> Tool:
    """The ``lean`` tool: ``{"code": "theorem t : 1 + 1 = 2 := by norm_num"}``."""
    checker = LeanChecker(config)

    @tool(name=name, timeout_s=checker.config.timeout_s + 30.0)
    def lean(code: str) -> ToolResult:
        """Check a Lean 4 theorem and its proof; report errors with positions and the goals left open.

        Args:
            code: Lean 4 source: the theorem statement and its proof (imports allowed first).
        """
        reason = lean_unavailable(checker.config)
        if reason is not None:
            return ToolResult(status=ToolStatus.REFUSED, error=reason)
        result = checker.check(code)
        status = ToolStatus.OK if result.verdict != "error" or result.messages else ToolStatus.ERROR
        return ToolResult(status=status, output=result.to_text(), data=result.model_dump(mode="json"))

    return lean
