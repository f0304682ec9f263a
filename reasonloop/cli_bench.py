"""``reasonloop bench ...``: run, resume and compare benchmarks from the command line.

Mounted on the main app with ``app.add_typer(bench_app, name="bench")``::

    reasonloop bench --suite logic -n 50 --model openai/gpt-4o-mini --samples 4 --out runs/logic
    reasonloop bench --suite logic -n 50 --model openai/gpt-4o-mini --samples 4 --out runs/logic --resume
    reasonloop bench compare runs/logic runs/logic-other
    reasonloop bench suites
    reasonloop bench expert --suite logic -n 50 --out expert.jsonl     # then --model replay:expert.jsonl
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["bench_app", "bench_compare", "bench_expert", "bench_run", "bench_suites"]

bench_app = typer.Typer(
    help="Task suites and benchmarks: run (resumable), compare, list suites.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@bench_app.callback()
def bench_run(
    ctx: typer.Context,
    suite: Annotated[str | None, typer.Option("--suite", "-s", help="Suite name, or KIND:PATH for a data file.")] = None,
    n: Annotated[int, typer.Option("-n", help="Number of tasks.")] = 50,
    model: Annotated[str, typer.Option("--model", "-m", help="expert, replay:FILE, hf:PATH or a LiteLLM model.")] = "expert",
    agent: Annotated[str, typer.Option("--agent", help="Agent graph.")] = "react",
    samples: Annotated[int, typer.Option("--samples", "-k", help="Episodes per task (pass@k).")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Episodes at once.")] = 8,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    difficulty: Annotated[int | None, typer.Option("--difficulty", "-d")] = None,
    max_steps: Annotated[int, typer.Option("--max-steps")] = 8,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 1024,
    tool_format: Annotated[str | None, typer.Option("--tool-format", help="openai, tags or json.")] = None,
    api_base: Annotated[str | None, typer.Option("--api-base", help="Server URL for API models.")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Where suites build tool data.")] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the PNG plots.")] = False,
) -> None:
    """Run a suite through an agent; writes config.json, runs.sqlite, report.json, summary.md, plots."""
    if ctx.invoked_subcommand is not None:
        return
    if suite is None or out is None:
        typer.echo(ctx.get_help())
        _fail("--suite and --out are required")
        return
    from reasonloop.bench.output import markdown_summary
    from reasonloop.bench.runner import run_bench
    from reasonloop.errors import ReasonloopError

    try:
        report = run_bench(
            suite, n, model, agent, samples, concurrency, out, resume, cache_dir=cache_dir, plots=not no_plots,
            seed=seed, difficulty=difficulty, max_steps=max_steps, temperature=temperature, max_tokens=max_tokens,
            tool_format=tool_format, api_base=api_base,
        )  # fmt: skip
    except ReasonloopError as exc:
        _fail(str(exc))
        return
    typer.echo(markdown_summary(report))
    typer.echo(f"wrote {out}/report.json")


@bench_app.command("compare")
def bench_compare(
    dirs: Annotated[list[Path], typer.Argument(help="Benchmark output directories; the first is the baseline.")],
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples.")] = 2000,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown instead of a table.")] = False,
) -> None:
    """Side-by-side pass@1 with bootstrap intervals, paired differences and per-task changes."""
    from reasonloop.bench.comparison import compare
    from reasonloop.errors import ReasonloopError

    try:
        table = compare(dirs, seed=seed, n_boot=n_boot)
    except ReasonloopError as exc:
        _fail(str(exc))
        return
    if markdown:
        typer.echo(table.to_markdown())
        return
    from rich.console import Console

    console = Console()
    console.print(table.to_rich())
    for row in table.rows[1:]:
        console.print(f"{row.name}: {len(row.task_diffs)} of {row.shared_tasks} shared tasks differ")
        for d in row.task_diffs[:10]:
            console.print(f"  {d.task_id}: {d.baseline:.2f} -> {d.other:.2f}")


@bench_app.command("suites")
def bench_suites() -> None:
    """List the registered suites."""
    from reasonloop.bench import SUITES

    for name in SUITES.names():
        suite = SUITES.get(name)
        typer.echo(f"{name:12} tools={','.join(suite.tools):22} difficulty={list(suite.difficulties)}  {suite.description}")


@bench_app.command("expert")
def bench_expert(
    suite: Annotated[str, typer.Option("--suite", "-s", help="Suite name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")],
    n: Annotated[int, typer.Option("-n")] = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    difficulty: Annotated[int | None, typer.Option("--difficulty", "-d")] = None,
) -> None:
    """Write the suite's scripted-expert recordings as JSONL, for ``--model replay:FILE``."""
    from reasonloop.bench.experts import write_expert_jsonl
    from reasonloop.bench.runner import resolve_suite
    from reasonloop.errors import ReasonloopError

    try:
        spec = resolve_suite(suite)
        count = write_expert_jsonl(spec.generate(n, seed=seed, difficulty=difficulty), out, system_prompt=spec.system_prompt)
    except ReasonloopError as exc:
        _fail(str(exc))
        return
    typer.echo(f"wrote {count} expert recordings to {out}")
