"""Plan, explain and check: the planning tools end to end, without a model.

    python examples/planning.py [--blocks N] [--seed S] [--planner fast-downward|pyperplan|enhsp]

Generates a blocksworld task, solves it with a real planner in a limited process,
prints the plan in words, then shows what the validator says about a plan with a
step dropped (what a refine loop would send back to a model).
"""

from __future__ import annotations

import argparse
import json
import sys

from reasonloop.planners import Planner, generate, render_plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--planner", default="fast-downward")
    args = parser.parse_args(argv)

    task = generate("blocksworld", seed=args.seed, n_blocks=args.blocks)
    print(task.description, end="\n\n")
    with Planner() as planner:
        result = planner.solve(task.domain, task.problem, planner=args.planner)
        print(
            json.dumps(
                {
                    "status": result.status.value,
                    "engine": result.engine,
                    "steps": len(result.plan),
                    "timings": result.timings.model_dump(),
                }
            )
        )
        if not result.solved:
            print(result.summary())
            return 1
        text = render_plan(result.plan, task.action_templates)
        print(text, end="\n\n")
        check = planner.validate(task.domain, task.problem, text)
        print(f"the plan in words reads back as {check.status.value}")
        broken = planner.validate(task.domain, task.problem, result.plan[1:])
        print(f"without its first step: {broken.status.value}: {broken.message}")
    return 0 if check.valid and not broken.valid else 1


if __name__ == "__main__":
    sys.exit(main())
