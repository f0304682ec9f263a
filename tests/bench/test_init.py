"""The public surface of reasonloop.bench, and that importing it stays light."""

import subprocess
import sys

import reasonloop.bench as bench


def test_exported_members():
    assert set(bench.__all__) == {
        "LOADERS", "SUITES", "VERIFIERS", "BenchConfig", "Comparison", "ExpertTurn", "Report", "Suite", "Task",
        "Verdict", "arith_tasks", "compare", "expert_policy", "expert_recording", "load_tasks", "run_bench",
        "write_expert_jsonl",
    }
    for name in bench.__all__:
        assert getattr(bench, name) is not None, name
    assert callable(bench.compare) and callable(bench.run_bench) and callable(bench.load_tasks)


def test_import_and_generation_load_no_heavy_backend():
    code = (
        "import sys, reasonloop.bench as b\n"
        "[b.SUITES.get(n).generate(2) for n in b.SUITES.names() if n != 'planning']\n"
        "import reasonloop.bench.runner, reasonloop.bench.loaders, reasonloop.bench.comparison\n"
        "print(sorted(m for m in ('z3', 'litellm', 'unified_planning', 'torch', 'matplotlib', 'math_verify') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
