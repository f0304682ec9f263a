"""Types of the Z3 checker: verdicts, limits and the typed result."""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from reasonloop.tools._smt_run import Limits

__all__ = ["Z3_MEMOUT_EXIT", "SmtConfig", "SmtResult", "Verdict", "error_result", "signal_name", "unknown_kind"]

Z3_MEMOUT_EXIT = 101
"""z3's exit status when it runs out of memory (the message then goes to stderr)."""


class Verdict(StrEnum):
    """The answer of one check."""

    SAT = "sat"
    UNSAT = "unsat"
    UNKNOWN = "unknown"
    ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class SmtConfig:
    """Limits of one check."""

    timeout_s: float = 5.0
    """Solver time per query; past it the answer is ``unknown`` (reason ``timeout``)."""
    wall_slack_s: float = 2.0
    """Extra wall-clock time for process start and parsing; the deadline is timeout_s + this."""
    memory_mb: int = 1024
    """Memory for the solver (address space on top of the process's own); past it the
    answer is ``unknown`` (reason ``memout``)."""
    max_input_chars: int = 1_000_000
    """Longer inputs are refused before anything runs."""
    max_depth: int = 10_000
    """Deeper s-expression nesting is refused before anything runs."""
    max_output_bytes: int = 1 << 20
    """Bytes of solver output kept; the process is stopped past it."""

    def __post_init__(self) -> None:
        if not 0 < self.timeout_s <= 3600 or self.wall_slack_s < 0:
            raise ValueError("timeout_s must be in (0, 3600] and wall_slack_s >= 0")
        if self.memory_mb < 16 or self.max_input_chars < 1 or self.max_depth < 1 or self.max_output_bytes < 1024:
            raise ValueError("memory_mb >= 16, max_input_chars >= 1, max_depth >= 1, max_output_bytes >= 1024")

    @property
    def wall_s(self) -> float:
        return self.timeout_s + self.wall_slack_s

    def limits(self, extra_mb: int) -> Limits:
        return Limits(
            wall_s=self.wall_s,
            cpu_s=math.ceil(self.wall_s) + 1,
            address_space_mb=self.memory_mb + extra_mb,
            max_output_bytes=self.max_output_bytes,
        )


class SmtResult(BaseModel):
    """Outcome of a check (data for verifiers; :meth:`to_text` for the model)."""

    verdict: Verdict
    reason: str | None = None
    """For ``unknown``: timeout, memout, resource limit or incomplete. For ``error``:
    input (refused before running), z3 (z3 reported an error), program (z3py), crash, setup."""
    message: str | None = None
    """Details: the error text (with line and column) or z3's own reason."""
    errors: list[str] = Field(default_factory=list)
    verdicts: list[Verdict] = Field(default_factory=list)
    """Answers of every check in the script, in order (push/pop scripts have several)."""
    model: dict[str, str] = Field(default_factory=dict)
    """For ``sat``: name -> value (SMT-LIB text; functions as lambdas)."""
    values: dict[str, str] = Field(default_factory=dict)
    """Answers of ``(get-value ...)``: term -> value."""
    unsat_core: list[str] | None = None
    language: Literal["smtlib", "z3py"] = "smtlib"
    program_output: str = ""
    """What a z3py program printed."""
    truncated: bool = False
    duration_s: float = 0.0
    expected: Verdict | None = None
    matches: bool | None = None
    """Whether ``verdict`` equals ``expected`` (None when nothing was expected)."""

    def to_text(self) -> str:
        """The result as the model reads it."""
        if self.verdict is Verdict.ERROR:
            lines = [f"{self.reason} error: {self.message}"]
        elif self.verdict is Verdict.UNKNOWN:
            lines = [f"unknown (reason: {self.reason})" + (f" - {self.message}" if self.message else "")]
        else:
            lines = [self.verdict.value]
        if len(self.verdicts) > 1:
            lines.append("answers of each check: " + ", ".join(v.value for v in self.verdicts))
        if self.model and self.verdict is Verdict.SAT:
            lines.append("model:")
            lines.extend(f"  {name} = {value}" for name, value in self.model.items())
        if self.values:
            lines.append("values:")
            lines.extend(f"  {term} = {value}" for term, value in self.values.items())
        if self.unsat_core is not None:
            lines.append("unsat core: " + (" ".join(self.unsat_core) or "(empty)"))
        if self.program_output:
            lines.append("program output:\n" + self.program_output.rstrip())
        if self.truncated:
            lines.append("[solver output was cut at the size limit]")
        return "\n".join(lines)


def error_result(reason: str, message: str, **extra: object) -> SmtResult:
    return SmtResult(verdict=Verdict.ERROR, reason=reason, message=message, **extra)  # type: ignore[arg-type]


def unknown_kind(raw: str | None) -> str:
    text = (raw or "").lower()
    if "timeout" in text or "canceled" in text:
        return "timeout"
    if "memory" in text or "memout" in text:
        return "memout"
    if "resource" in text or "rlimit" in text:
        return "resource limit"
    return "incomplete"


def signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"
