"""The shipped ``tiny`` model on one held-out task, with and without its tool.

Loads the model that ships with the package (``--model tiny``: no download, no key,
CPU), runs the ReAct agent on a generated task of the chosen suite through the real
tool, prints every step, then asks the same model without tools.

    python examples/tiny_model.py --suite arith --seed 10000
    python examples/tiny_model.py --eval 20      # accuracy per suite on held-out seeds, tools vs none
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console

from reasonloop.bench.suites import SUITES
from reasonloop.console import print_trajectory
from reasonloop.policy.registry import load_policy
from reasonloop.recipes.tiny import EVAL_DIFFICULTY, TINY_SUITES
from reasonloop.recipes.tiny_loop import evaluate_suites


def _evaluate(console: Console, policy: object, n: int, seed: int) -> None:
    from reasonloop.recipes.tiny import held_out_tasks

    tasks = held_out_tasks(TINY_SUITES, n, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        tools, _ = evaluate_suites(policy, tasks, tools=True, cache_dir=Path(tmp))
        bare, _ = evaluate_suites(policy, tasks, tools=False, cache_dir=Path(tmp))
    console.print(f"{'suite':<12} {'tasks':>5} {'with tools':>10} {'no tools':>9}   (seed {seed})")
    for suite in TINY_SUITES:
        console.print(f"{suite:<12} {n:>5} {tools[suite]:>10.0%} {bare[suite]:>9.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="arith", choices=TINY_SUITES)
    parser.add_argument("--seed", type=int, default=10_000, help="generator seed (10000+: held out)")
    parser.add_argument("--eval", type=int, default=0, metavar="N", help="evaluate N held-out tasks of every suite")
    args = parser.parse_args()
    console = Console(width=120)
    policy = load_policy("tiny", device="cpu")
    if args.eval:
        _evaluate(console, policy, args.eval, args.seed)
        return
    task = SUITES.get(args.suite).generate(1, seed=args.seed, difficulty=EVAL_DIFFICULTY[args.suite])[0]
    console.print(f"task ({args.suite}): {task.prompt[:300]}")
    with tempfile.TemporaryDirectory() as tmp:
        scores, trajs = evaluate_suites(policy, {args.suite: [task]}, tools=True, cache_dir=Path(tmp))
        print_trajectory(console, trajs[args.suite][0])
        no_tools, bare = evaluate_suites(policy, {args.suite: [task]}, tools=False, cache_dir=Path(tmp))
    console.print(f"without tools the model answers {bare[args.suite][0].final_answer!r}")
    console.print(f"correct with tools: {scores[args.suite]:.0f}   correct without tools: {no_tools[args.suite]:.0f}")


if __name__ == "__main__":
    main()
