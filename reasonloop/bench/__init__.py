"""Task suites, verifiers and (later) the benchmark runner."""

from reasonloop.bench.arith import arith_tasks
from reasonloop.bench.task import VERIFIERS, ExpertTurn, Task, Verdict

__all__ = ["VERIFIERS", "ExpertTurn", "Task", "Verdict", "arith_tasks"]
