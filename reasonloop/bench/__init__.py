"""Task suites, verifiers, loaders for standard data files, and the benchmark runner.

    from reasonloop.bench import SUITES, run_bench
    tasks = SUITES.get("logic").generate(20, seed=0, difficulty=2)
    report = run_bench("logic", n=20, model="expert", out_dir="runs/logic-expert")

The runner, the loaders and the comparison load on first access, so importing this
package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from reasonloop.bench import catalog as _catalog  # noqa: F401  (registers the built-in suites)
from reasonloop.bench.arith import arith_tasks
from reasonloop.bench.suites import SUITES, Suite
from reasonloop.bench.task import VERIFIERS, ExpertTurn, Task, Verdict

_LAZY: dict[str, str] = {
    "BenchConfig": "reasonloop.bench.runner",
    "Report": "reasonloop.bench.report",
    "run_bench": "reasonloop.bench.runner",
    "compare": "reasonloop.bench.comparison",
    "Comparison": "reasonloop.bench.comparison",
    "LOADERS": "reasonloop.bench.loaders",
    "load_tasks": "reasonloop.bench.loaders",
    "expert_policy": "reasonloop.bench.experts",
    "expert_recording": "reasonloop.bench.experts",
    "write_expert_jsonl": "reasonloop.bench.experts",
}

__all__ = [
    "LOADERS",
    "SUITES",
    "VERIFIERS",
    "BenchConfig",
    "Comparison",
    "ExpertTurn",
    "Report",
    "Suite",
    "Task",
    "Verdict",
    "arith_tasks",
    "compare",
    "expert_policy",
    "expert_recording",
    "load_tasks",
    "run_bench",
    "write_expert_jsonl",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'reasonloop.bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
