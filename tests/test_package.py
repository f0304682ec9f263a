"""The package surface: exported names are pinned, imports stay light."""

import subprocess
import sys

import reasonloop

HEAVY = ("torch", "vllm", "z3", "litellm", "unified_planning", "transformers", "pyarrow", "langgraph", "numpy")

EXPECTED_EXPORTS = {
    "__version__",
    "Agent",
    "AgentRuntime",
    "AgentTask",
    "Episode",
    "HFPolicy",
    "HFPolicyConfig",
    "LiteLLMPolicy",
    "ReplayPolicy",
    "RunStore",
    "RunSummary",
    "TrainingSequence",
    "build_react_agent",
    "export_jsonl",
    "export_parquet",
    "import_jsonl",
    "import_parquet",
    "load_policy",
    "load_toolset",
    "trajectory_to_tensors",
    "Completion",
    "Context",
    "MemoryStep",
    "NoteStep",
    "Policy",
    "PolicyStep",
    "Reward",
    "SamplingParams",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolResult",
    "ToolSpec",
    "ToolStatus",
    "ToolStep",
    "Toolset",
    "Trajectory",
    "tool",
}


def test_exported_members_are_pinned():
    assert set(reasonloop.__all__) == EXPECTED_EXPORTS
    for name in reasonloop.__all__:
        assert getattr(reasonloop, name) is not None


def test_import_loads_no_heavy_backend():
    code = f"import reasonloop, sys; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == ""


def test_cli_help_loads_no_heavy_backend():
    code = (
        "import sys\n"
        "from reasonloop.cli import app\n"
        "import typer.testing\n"
        "r = typer.testing.CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"print(','.join(m for m in {(*HEAVY, 'reasonloop.bench', 'reasonloop.agents')!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == ""
