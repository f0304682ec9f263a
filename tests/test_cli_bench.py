"""The ``reasonloop bench`` command group (mounted by the main CLI)."""

import json

from typer.testing import CliRunner

from reasonloop.cli_bench import bench_app

RUNNER = CliRunner()


def invoke(*args):
    return RUNNER.invoke(bench_app, [str(a) for a in args])


def test_run_resume_compare_and_expert_file(tmp_path):
    a, b, rec = tmp_path / "a", tmp_path / "b", tmp_path / "expert.jsonl"
    res = invoke("--suite", "logic", "-n", 3, "--samples", 2, "--out", a, "--no-plots")
    assert res.exit_code == 0, res.output
    assert "| pass@2 | 1.000 |" in res.output and f"wrote {a}/report.json" in res.output
    assert json.loads((a / "report.json").read_text())["episodes"] == 6

    res = invoke("--suite", "logic", "-n", 3, "--samples", 2, "--out", a, "--no-plots")
    assert res.exit_code == 2 and "already holds a benchmark run" in res.output
    res = invoke("--suite", "logic", "-n", 4, "--samples", 2, "--out", a, "--resume")
    assert res.exit_code == 2 and "changed: n" in res.output
    res = invoke("--suite", "logic", "-n", 3, "--samples", 2, "--out", a, "--resume", "--no-plots")
    assert res.exit_code == 0, res.output

    res = invoke("expert", "--suite", "logic", "-n", 3, "--out", rec)
    assert res.exit_code == 0 and res.output.strip() == f"wrote 3 expert recordings to {rec}"
    res = invoke("--suite", "logic", "-n", 3, "--samples", 2, "--model", f"replay:{rec}", "--out", b, "--no-plots")
    assert res.exit_code == 0, res.output

    res = invoke("compare", a, b, "--markdown")
    assert res.exit_code == 0, res.output
    assert "| 1.000 [1.000, 1.000] |" in res.output and "0 of 3 shared tasks differ" in res.output
    res = invoke("compare", a, tmp_path / "missing")
    assert res.exit_code == 2 and "no report.json" in res.output


def test_usage_errors_and_listing(tmp_path):
    res = invoke("--suite", "nope", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "unknown suite 'nope'" in res.output and "arith-chain" in res.output
    res = invoke("--suite", "logic")
    assert res.exit_code == 2 and "--suite and --out are required" in res.output
    res = invoke("suites")
    assert res.exit_code == 0 and [line.split()[0] for line in res.output.splitlines()] == [
        "arith", "arith-chain", "arith-py", "logic", "lookup", "planning"
    ]
