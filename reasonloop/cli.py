"""The ``reasonloop`` command line.

Every command imports its back end lazily so ``reasonloop --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

__all__ = ["app", "main"]

DEFAULT_STORE = Path("runs") / "runs.sqlite"

app = typer.Typer(
    name="reasonloop",
    help="Agents that reason with tools, recorded as lossless trajectories, trained with agentic RL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
runs_app = typer.Typer(help="Inspect and export recorded runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


def _add_bench() -> None:
    from reasonloop.cli_bench import bench_app

    app.add_typer(bench_app, name="bench")


_add_bench()

StoreOpt = Annotated[Path, typer.Option("--store", help="Run store (SQLite file).")]


def _console() -> Any:
    from rich.console import Console

    return Console()


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def run(
    question: Annotated[str, typer.Argument(help="The task for the agent.")],
    model: Annotated[str, typer.Option("--model", "-m", help="tiny, smollm2, hf:PATH, replay:FILE or a LiteLLM model.")],
    tools: Annotated[str, typer.Option("--tools", "-t", help="Comma-separated tool names.")] = "calculator",
    agent: Annotated[str, typer.Option("--agent", help="Agent graph.")] = "react",
    store: StoreOpt = DEFAULT_STORE,
    run_id: Annotated[str, typer.Option("--run-id", help="Run the episode belongs to.")] = "cli",
    task_id: Annotated[str | None, typer.Option("--task-id", help="Task id (default: a hash of the question).")] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Policy calls per episode.")] = 8,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.0,
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 512,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    tool_format: Annotated[str | None, typer.Option("--tool-format", help="openai, tags or json.")] = None,
    api_base: Annotated[str | None, typer.Option("--api-base", help="Server URL for API models.")] = None,
    system: Annotated[str | None, typer.Option("--system", help="System prompt.")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="Response cache for API models (SQLite).")] = None,
    index: Annotated[Path | None, typer.Option("--index", help="Search index directory (search tool).")] = None,
    adapter: Annotated[Path | None, typer.Option("--adapter", help="peft LoRA adapter directory (local models).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the trajectory as JSON at the end.")] = False,
) -> None:
    """Run one episode, stream its steps live, and save the trajectory."""
    import hashlib

    from reasonloop.agents import AGENTS
    from reasonloop.console import print_step, print_trajectory
    from reasonloop.errors import ReasonloopError
    from reasonloop.policy.base import SamplingParams
    from reasonloop.policy.registry import load_policy
    from reasonloop.tools.registry import load_toolset
    from reasonloop.trajectory.store import RunStore

    console = _console()
    try:
        policy = load_policy(
            model, tool_format=tool_format, api_base=api_base, cache_path=cache, adapter=str(adapter) if adapter else None
        )
        toolset = load_toolset(tools, {"search": {"index_dir": index}} if index is not None else None)
        sampling = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
        graph = AGENTS.get(agent)(policy, toolset, system_prompt=system, sampling=sampling, max_steps=max_steps)
    except (ReasonloopError, ValueError) as exc:
        _fail(str(exc))
    from reasonloop.agents import AgentRuntime

    store.parent.mkdir(parents=True, exist_ok=True)
    tid = task_id or "q-" + hashlib.sha256(question.encode()).hexdigest()[:12]

    async def go() -> Any:
        with RunStore(store) as run_store:
            async with AgentRuntime(graph, store=run_store, run_id=run_id) as runtime:
                return await runtime.run(
                    question, task_id=tid, seed=seed, on_step=lambda ev: print_step(console, ev["step"], ev["index"])
                )

    traj = asyncio.run(go())
    console.rule()
    print_trajectory(console, traj)
    console.print(f"saved trajectory {traj.id} to {store}")
    if as_json:
        typer.echo(traj.to_json())


@runs_app.command("list")
def runs_list(store: StoreOpt = DEFAULT_STORE) -> None:
    """List runs in the store with episode counts and mean reward."""
    from reasonloop.console import trajectory_table
    from reasonloop.trajectory.store import RunStore

    if not store.exists():
        _fail(f"no run store at {store}")
    with RunStore(store) as s:
        rows = [
            {
                "run": r.run_id,
                "episodes": r.episodes,
                "mean reward": r.mean_reward if r.mean_reward is not None else "-",
            }
            for r in s.runs()
        ]
    _console().print(trajectory_table(rows, f"runs in {store}"))


@runs_app.command("show")
def runs_show(
    trajectory_id: Annotated[str | None, typer.Argument(help="Trajectory id (default: the latest).")] = None,
    store: StoreOpt = DEFAULT_STORE,
    run_id: Annotated[str | None, typer.Option("--run", help="Latest of this run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
) -> None:
    """Show one trajectory step by step."""
    from reasonloop.console import print_trajectory
    from reasonloop.trajectory.store import RunStore

    if not store.exists():
        _fail(f"no run store at {store}")
    with RunStore(store) as s:
        if trajectory_id:
            traj = s.get(trajectory_id)
        else:
            found = list(s.iter_trajectories(run_id=run_id))
            traj = found[-1] if found else None
    if traj is None:
        _fail(f"no trajectory {trajectory_id or ''} in {store}".replace("  ", " "))
    if as_json:
        typer.echo(traj.to_json())
    else:
        print_trajectory(_console(), traj)


@runs_app.command("export")
def runs_export(
    out: Annotated[Path, typer.Argument(help="Output file: .jsonl or .parquet.")],
    store: StoreOpt = DEFAULT_STORE,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
) -> None:
    """Export trajectories losslessly to JSONL or Parquet."""
    from reasonloop.trajectory.export import export_jsonl, export_parquet
    from reasonloop.trajectory.store import RunStore

    if out.suffix not in (".jsonl", ".parquet"):
        _fail("the output file must end in .jsonl or .parquet")
    with RunStore(store) as s:
        writer = export_parquet if out.suffix == ".parquet" else export_jsonl
        n = writer(s, out, run_id=run_id)
    typer.echo(f"exported {n} trajectories to {out}")


@runs_app.command("import")
def runs_import(
    source: Annotated[Path, typer.Argument(help="A .jsonl or .parquet export.")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Import trajectories (idempotent: episodes already stored are skipped)."""
    from reasonloop.trajectory.export import import_jsonl, import_parquet
    from reasonloop.trajectory.store import RunStore

    if not source.is_file():
        _fail(f"no file {source}")
    store.parent.mkdir(parents=True, exist_ok=True)
    with RunStore(store) as s:
        reader = import_parquet if source.suffix == ".parquet" else import_jsonl
        n = reader(source, s)
    typer.echo(f"imported {n} new trajectories into {store}")


@app.command("tool")
def tool_cmd(
    name: Annotated[str, typer.Argument(help="Tool name (calculator, python, z3, search, plan, validate_plan).")],
    json_args: Annotated[str, typer.Argument(help="Arguments as a JSON object.")] = "{}",
    timeout: Annotated[float | None, typer.Option("--timeout", help="Wall-clock limit in seconds.")] = None,
    index: Annotated[Path | None, typer.Option("--index", help="Search index directory (search tool).")] = None,
) -> None:
    """Run one tool once and print its ToolResult as JSON."""
    from dataclasses import replace

    from reasonloop.errors import ReasonloopError
    from reasonloop.tools.base import Toolset
    from reasonloop.tools.registry import TOOLS, build_tools
    if name not in TOOLS:
        _fail(f"unknown tool {name!r}; available: {', '.join(TOOLS.names())}")
    options = {"search": {"index_dir": index}} if index is not None else None
    try:
        tools = build_tools([name], options)
    except (ReasonloopError, ValueError, OSError) as exc:
        _fail(f"{name} could not be created: {exc}")
    if timeout is not None:
        if timeout <= 0:
            _fail("--timeout must be > 0")
        tools = [replace(t, timeout_s=timeout) for t in tools]
    chosen = next((t for t in tools if t.name == name), tools[0])

    async def call() -> Any:
        with Toolset(tools).open("cli") as session:
            return await session.invoke(chosen.name, json_args)

    result = asyncio.run(call())
    typer.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
    raise typer.Exit(0 if result.ok else 1)


@app.command("plan")
def plan_cmd(
    domain: Annotated[Path, typer.Argument(help="PDDL domain file.")],
    problem: Annotated[Path, typer.Argument(help="PDDL problem file.")],
    planner: Annotated[str, typer.Option("--planner", help="fast-downward, pyperplan or enhsp.")] = "fast-downward",
    timeout: Annotated[float, typer.Option("--timeout", help="Wall-clock limit in seconds.")] = 30.0,
    optimal: Annotated[bool, typer.Option("--optimal", help="Ask for an optimal plan.")] = False,
    validate: Annotated[Path | None, typer.Option("--validate", help="Validate this plan file instead of solving.")] = None,
) -> None:
    """Solve a PDDL problem (or validate a plan) and print the result as JSON.

    Exit status: 0 solved/valid, 1 unsolvable/invalid plan, 2 invalid input,
    3 timeout, memory-out or engine error.
    """
    from reasonloop.planners.commands import plan_command, validate_command

    if validate is not None:
        code, text = validate_command(validate, domain, problem, timeout_s=timeout)
    else:
        code, text = plan_command(domain, problem, planner=planner, timeout_s=timeout, optimal=optimal)
    typer.echo(text)
    raise typer.Exit(code)


def _print_result(call: Any) -> None:
    """Run a command function that returns a dict; ConfigError becomes a clean exit 2."""
    from reasonloop.errors import ReasonloopError

    try:
        result = call()
    except (ReasonloopError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result, indent=2, default=str))


@app.command()
def train(
    config: Annotated[Path | None, typer.Argument(help="Training config (YAML).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue this run directory.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Train up to this step.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """Train a policy with ARPO or GRPO rollouts through the agent graph (resumable)."""
    from reasonloop.training.commands import train_command

    if config is None and resume is None:
        _fail("give a CONFIG.yaml, or --resume DIR")
    _print_result(lambda: train_command(config, resume=resume, steps=steps, progress=not no_progress))


@app.command()
def sft(
    trajectories: Annotated[Path, typer.Argument(help="Trajectories JSONL recorded with this model's tokenizer.")],
    model: Annotated[str, typer.Option("--model", help="Local checkpoint (hf:PATH or a directory).")],
    out: Annotated[Path, typer.Option("--out", help="Where the fine-tuned model is saved.")],
    steps: int = 100,
    lr: float = 1e-3,
    batch_size: int = 8,
    seed: int = 0,
) -> None:
    """Supervised fine-tuning on recorded trajectories (loss only on sampled policy tokens)."""
    from reasonloop.training.commands import sft_command

    _print_result(lambda: sft_command(trajectories, model, out, steps=steps, lr=lr, batch_size=batch_size, seed=seed))


@app.command("export-train")
def export_train(
    trajectories: Annotated[Path, typer.Argument(help="Trajectories JSONL.")],
    out: Annotated[Path, typer.Argument(help="Parquet file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="trl or verl.")] = "verl",
) -> None:
    """Export trajectories as prompt/response token ids and masks for TRL or verl."""
    from reasonloop.training.commands import export_command

    _print_result(lambda: export_command(trajectories, out, fmt=fmt))


recipe_app = typer.Typer(help="End-to-end recipes that produce trained policies.", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")


@recipe_app.command("tiny")
def recipe_tiny(
    out: Annotated[Path, typer.Option("--out", help="Run directory (model, trajectories, summary.json).")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of tasks, tokenizer, model and training.")] = 0,
    variant: Annotated[str, typer.Option("--variant", help="shipped (the model in assets/tiny) or bpe "
                                                            "(the earlier recipe: names in BPE pieces).")] = "shipped",
) -> None:
    """Train the embedded tiny policy from nothing: expert trajectories, tokenizer, SFT, ARPO, evaluation."""
    from reasonloop.recipes.tiny import recipe_variant, run_tiny_recipe

    console = _console()
    _print_result(lambda: run_tiny_recipe(out, config=recipe_variant(variant, seed=seed), log=console.print))


@recipe_app.command("smollm2")
def recipe_smollm2(
    out: Annotated[Path, typer.Option("--out", help="Run directory (adapter, trajectories, summary).")],
    n_train: Annotated[int, typer.Option("--n-train", help="Expert trajectories for SFT.")] = 32,
    n_eval: Annotated[int, typer.Option("--n-eval", help="Held-out tasks evaluated.")] = 10,
    steps: Annotated[int, typer.Option("--steps", help="LoRA SFT steps.")] = 16,
    arpo_steps: Annotated[int, typer.Option("--arpo-steps", help="ARPO steps from the SFT adapter.")] = 0,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda (default: auto).")] = None,
) -> None:
    """SmolLM2-135M-Instruct: zero-shot eval, LoRA SFT on arith experts, eval, then optional ARPO."""
    from reasonloop.recipes.smollm2 import run_arpo_from_adapter, run_smollm2_recipe

    console = _console()
    summary = run_smollm2_recipe(out, n_train=n_train, n_eval=n_eval, steps=steps, device=device, log=console.print)
    if arpo_steps > 0:
        summary["arpo"] = run_arpo_from_adapter(
            out, summary["adapter"], steps=arpo_steps, n_eval=n_eval, device=device, log=console.print
        )
    typer.echo(json.dumps(summary, indent=2, default=str))


memory_app = typer.Typer(help="Inspect long-term memory stores.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
MemStoreOpt = Annotated[Path, typer.Option("--store", help="Memory store (SQLite file).")]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Dotted namespace prefix, e.g. lessons.alice.")]


def _memory(call: Any) -> None:
    from reasonloop.errors import StoreError
    from reasonloop.memory.cli import render

    try:
        typer.echo(render(call()))
    except StoreError as exc:
        _fail(str(exc))


@memory_app.command("list")
def memory_list_cmd(store: MemStoreOpt, namespace: NamespaceOpt = "", limit: int = 20) -> None:
    """List memories, newest first."""
    from reasonloop.memory.cli import memory_list

    _memory(lambda: memory_list(store, namespace=namespace, limit=limit))


@memory_app.command("search")
def memory_search_cmd(
    query: Annotated[str, typer.Argument(help="What to recall.")],
    store: MemStoreOpt,
    namespace: NamespaceOpt = "",
    limit: int = 5,
    dense: Annotated[bool, typer.Option("--dense", help="Use the embedding model (dense extra).")] = False,
) -> None:
    """Search memories with the hybrid ranking; every hit explains its score."""
    from reasonloop.memory.cli import memory_search

    _memory(lambda: memory_search(store, query, namespace=namespace, limit=limit, dense=dense))


@memory_app.command("show")
def memory_show_cmd(
    namespace: Annotated[str, typer.Argument(help="Dotted namespace.")],
    key: Annotated[str, typer.Argument(help="Memory key.")],
    store: MemStoreOpt,
    history: int = 20,
) -> None:
    """Show one memory and its change history."""
    from reasonloop.memory.cli import memory_show

    _memory(lambda: memory_show(store, namespace, key, history=history))


@memory_app.command("export")
def memory_export_cmd(
    store: MemStoreOpt,
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write (default: stdout).")] = Path("-"),
    namespace: NamespaceOpt = "",
    history: Annotated[bool, typer.Option("--history", help="Include the audit history.")] = False,
) -> None:
    """Export memories as JSONL."""
    from reasonloop.errors import StoreError
    from reasonloop.memory.cli import memory_export

    try:
        if str(out) == "-":
            n = memory_export(store, sys.stdout, namespace=namespace, history=history)
        else:
            with out.open("w", encoding="utf-8") as fh:
                n = memory_export(store, fh, namespace=namespace, history=history)
    except StoreError as exc:
        _fail(str(exc))
    typer.echo(f"exported {n} memories", err=True)


index_app = typer.Typer(help="Build local search indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("build")
def index_build(
    corpus: Annotated[Path, typer.Argument(help="JSONL corpus: one {id, title, text} object per line.")],
    out: Annotated[Path, typer.Option("--out", help="Index directory to write.")],
    dense: Annotated[bool, typer.Option("--dense", help="Also build a dense index (needs the dense extra).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing index.")] = False,
) -> None:
    """Build a BM25 (and optionally dense) index from a JSONL corpus."""
    from reasonloop.tools.search import SearchIndexError, build_index

    try:
        manifest = build_index(corpus, out, dense=dense, overwrite=overwrite)
    except SearchIndexError as exc:
        _fail(str(exc), code=1)
    typer.echo(manifest.summary())


@app.command()
def demo(
    quick: Annotated[bool, typer.Option("--quick", help="A shorter run.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Where trajectories and reports go.")] = Path("runs") / "demo",
) -> None:
    """Run the demo: an agent with tools, every step recorded, then the stored trajectories."""
    from reasonloop.demo import run_demo

    code = run_demo(out=out, quick=quick, console=_console())
    raise typer.Exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``reasonloop`` script."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="reasonloop")


if __name__ == "__main__":
    main()
