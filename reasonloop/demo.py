"""``reasonloop demo``: the whole loop with the shipped ``tiny`` model, on a CPU, with no key.

1. The agent runs held-out generated tasks of every suite with real tools (calculator,
   sandboxed Python, Z3, BM25 search, Fast Downward); steps are shown live and every
   episode is stored in a run store.
2. The same model answers the same tasks without tools: the table shows what the tools add.
3. A short ARPO fine-tune on the suite where the model is weakest (sampled episodes,
   verifier rewards, entropy-guided branching), then the held-out tasks again.
4. Report, plots and trajectories on disk, and the commands for a real model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from reasonloop.console import step_line, trajectory_table

__all__ = ["FULL", "QUICK", "DemoPlan", "pick_arpo_suite", "run_demo"]


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    """How much the demo runs."""

    tasks: Mapping[str, int]
    """Held-out tasks per suite."""
    arpo_steps: int
    """ARPO steps (one sampled group per step)."""
    group_size: int
    """Trajectories per ARPO group."""
    arpo_tasks: int = 24
    """Training-seed tasks the ARPO prompts are drawn from."""
    max_draws: int = 3
    """Groups an ARPO step may draw until one has rewards that differ (the others have no signal)."""

    def __post_init__(self) -> None:
        if not self.tasks or min(self.tasks.values()) < 1 or self.arpo_steps < 0 or self.group_size < 2 \
                or self.max_draws < 1:
            raise ValueError("a demo needs >= 1 task per suite, arpo_steps >= 0, group_size >= 2 and max_draws >= 1")


FULL = DemoPlan(tasks={"arith": 10, "arith-py": 5, "arith-chain": 6, "lookup": 8, "logic": 4, "planning": 3},
                arpo_steps=6, group_size=4)
QUICK = DemoPlan(tasks={"arith": 2, "arith-py": 1, "arith-chain": 1, "lookup": 2, "logic": 1, "planning": 1},
                 arpo_steps=1, group_size=2, max_draws=1)
_ARPO_SEED = 777
"""Generator seed of the ARPO prompts (neither a training nor a held-out seed)."""


def pick_arpo_suite(accuracy: Mapping[str, float]) -> str:
    """The weakest suite that still gets some reward (RL needs a signal), else the weakest."""
    learnable = {s: a for s, a in accuracy.items() if 0 < a < 1}
    pool = learnable or {s: a for s, a in accuracy.items() if a < 1} or dict(accuracy)
    return min(pool, key=lambda s: (pool[s], s))


def _show(console: Console, shown: dict[str, str]) -> Any:
    """Live view: every step of each suite's first episode."""

    def on_step(suite: str, event: dict[str, Any]) -> None:
        first = shown.setdefault(suite, event["episode_id"])
        if first == event["episode_id"]:
            console.print(f"[dim]{suite:<11}[/dim]", step_line(event["step"], event["index"]))

    return on_step


def _results_line(console: Console, suite: str, trajs: Sequence[Any]) -> None:
    marks = "".join("[green]✓[/green]" if t.reward > 0 else "[red]✗[/red]" for t in trajs)
    console.print(f"  {suite:<11} {marks}  {sum(t.reward > 0 for t in trajs)}/{len(trajs)}")


def _plot(out: Path, tables: Mapping[str, Mapping[str, float]], arpo: Sequence[Mapping[str, Any]]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    suites = list(next(iter(tables.values())))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(tables)
    for i, (label, acc) in enumerate(tables.items()):
        ax.bar([x + i * width for x in range(len(suites))], [acc.get(s, 0.0) for s in suites], width, label=label)
    ax.set_xticks([x + width * (len(tables) - 1) / 2 for x in range(len(suites))], suites)
    ax.set_ylabel("accuracy (held-out)")
    ax.set_ylim(0, 1.05)
    ax.legend()
    fig.tight_layout()
    paths = [out / "accuracy.png"]
    fig.savefig(paths[0])
    plt.close(fig)
    if arpo:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot([e["step"] for e in arpo], [e["reward_mean"] for e in arpo], marker="o")
        ax.set_xlabel("ARPO step")
        ax.set_ylabel("mean group reward")
        fig.tight_layout()
        paths.append(out / "arpo_reward.png")
        fig.savefig(paths[1])
        plt.close(fig)
    return paths


def _arpo(suite: str, plan: DemoPlan, cache: Path, console: Console) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Fine-tune a fresh copy of the shipped model on ``suite``; returns (model, tokenizer, history)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonloop.bench.suites import SUITES
    from reasonloop.policy.registry import TINY_MODEL_PATH
    from reasonloop.recipes.tiny import EVAL_DIFFICULTY
    from reasonloop.recipes.tiny_loop import arpo_finetune

    tokenizer = AutoTokenizer.from_pretrained(TINY_MODEL_PATH, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(TINY_MODEL_PATH, local_files_only=True).float()
    tasks = SUITES.get(suite).generate(plan.arpo_tasks, seed=_ARPO_SEED, difficulty=EVAL_DIFFICULTY.get(suite))

    def log(entry: dict[str, Any]) -> None:
        trained = (f"{entry['groups_trained']} of {entry['groups_drawn']} groups with a signal, "
                   f"loss {entry['loss']:+.3f}" if "loss" in entry else
                   f"no group of {entry['groups_drawn']} with a signal (all right or all wrong): no update")
        console.print(f"  step {entry['step']}: {entry['trajectories']} trajectories "
                      f"({entry['branches']:.0f} branched), mean reward {entry['reward_mean']:.2f}, "
                      f"{trained}, {entry['seconds']:.1f}s")

    history = arpo_finetune(model, tokenizer, {suite: tasks}, steps=plan.arpo_steps, cache_dir=cache,
                            group_size=plan.group_size, global_samples=max(1, plan.group_size // 2),
                            max_draws=plan.max_draws, log=log)
    return model, tokenizer, history


def _shown_path(name: str) -> str:
    """``hf:PATH`` with PATH relative to the working directory when it lies under it."""
    path = Path(name.removeprefix("hf:"))
    try:
        return "hf:" + str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return name


def _table(tasks: Mapping[str, Sequence[Any]], columns: Mapping[str, Mapping[str, float]]) -> Any:
    rows = [{"suite": s, "tasks": len(ts), **{k: f"{v[s]:.0%}" if s in v else "-" for k, v in columns.items()}}
            for s, ts in tasks.items()]
    return trajectory_table(rows, "held-out accuracy")


def run_demo(*, out: Path, quick: bool, console: Console) -> int:
    """Run the demo into ``out``; returns the process exit code (0: the loop ran end to end)."""
    from transformers.utils import logging as hf_logging

    from reasonloop.errors import ConfigError
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.policy.registry import load_policy
    from reasonloop.recipes.tiny import TEMPLATE, held_out_tasks
    from reasonloop.recipes.tiny_loop import evaluate_suites
    from reasonloop.trajectory.export import export_jsonl
    from reasonloop.trajectory.store import RunStore

    hf_logging.disable_progress_bar()  # weight loading bars would interleave with the live steps
    plan = QUICK if quick else FULL
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.sqlite").unlink(missing_ok=True)
    cache = out / "cache"
    started = time.perf_counter()
    console.rule("reasonloop demo: the shipped tiny model, real tools, CPU only")
    try:
        policy = load_policy("tiny", device="cpu")
    except ConfigError as exc:
        console.print(f"[red]cannot load the shipped model: {exc}[/red]")
        return 1
    tasks = held_out_tasks(list(plan.tasks), max(plan.tasks.values()))
    tasks = {s: ts[: plan.tasks[s]] for s, ts in tasks.items()}
    console.print(f"Model: tiny ({_shown_path(policy.name)}), ReAct agent (LangGraph), greedy decoding.\n"
                  f"Held-out tasks: {', '.join(f'{s} x{len(t)}' for s, t in tasks.items())}.\n")
    console.rule("1. with tools (first episode of each suite shown step by step)")
    shown: dict[str, str] = {}
    with RunStore(out / "runs.sqlite") as store:
        with_tools, trajs = evaluate_suites(policy, tasks, tools=True, cache_dir=cache, store=store,
                                            run_id="demo-tools", on_step=_show(console, shown))
        for suite, ts in trajs.items():
            _results_line(console, suite, ts)
        console.rule("2. the same model, no tools")
        without, _ = evaluate_suites(policy, tasks, tools=False, cache_dir=cache, store=store, run_id="demo-no-tools")
        console.print(_table(tasks, {"with tools": with_tools, "without tools": without}))
        suite = pick_arpo_suite(with_tools)
        console.rule(f"3. ARPO fine-tune on '{suite}' ({plan.arpo_steps} steps, groups of {plan.group_size}, CPU)")
        model, tokenizer, history = _arpo(suite, plan, cache, console)
        tuned = HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu", template=TEMPLATE, name="tiny+arpo"))
        after, _ = evaluate_suites(tuned, {suite: tasks[suite]}, tools=True, cache_dir=cache, store=store,
                                   run_id="demo-arpo")
        console.print(_table(tasks, {"no tools": without, "tools": with_tools, "tools + ARPO": after}))
        n_jsonl = export_jsonl([t for ts in trajs.values() for t in ts], out / "trajectories.jsonl")
    plots = _plot(out / "plots", {"no tools": without, "tools": with_tools, "tools + ARPO": after}, history)
    model.save_pretrained(out / "tiny-arpo")
    tokenizer.save_pretrained(out / "tiny-arpo")
    report = {"accuracy_with_tools": with_tools, "accuracy_without_tools": without, "arpo_suite": suite,
              "accuracy_after_arpo": after, "arpo": history, "tasks": {s: len(t) for s, t in tasks.items()},
              "seconds": time.perf_counter() - started, "quick": quick}
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    console.rule("4. where everything is")
    console.print(
        f"Trajectories: {out / 'runs.sqlite'} ({n_jsonl} episodes; also {out / 'trajectories.jsonl'})\n"
        f"Report: {out / 'report.json'}   Plots: {', '.join(str(p) for p in plots)}\n"
        f"Fine-tuned model: hf:{out / 'tiny-arpo'}\n"
        f"Inspect: reasonloop runs list --store {out / 'runs.sqlite'}\n"
        "Same benchmark, other models:\n"
        "  reasonloop bench -s arith -n 20 --seed 10000 --model tiny\n"
        "  reasonloop bench -s arith -n 20 --seed 10000 --model openai/gpt-4o-mini\n"
        "  reasonloop bench -s planning -n 20 --model hosted_vllm/Qwen/Qwen2.5-7B-Instruct "
        "--api-base http://HOST:8000/v1\n"
        f"Demo time: {time.perf_counter() - started:.0f}s"
    )
    return 0

