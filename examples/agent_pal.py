"""Program-aided agent with self-debugging: a program that raises is repaired from its traceback.

    python examples/agent_pal.py

The policy replays a recorded episode (offline, same output every run); the programs run
for real in the sandboxed Python interpreter. Swap in ``load_policy("openai/gpt-4o-mini")``
or ``load_policy("hf:PATH")`` for a real model.
"""

from __future__ import annotations

import asyncio

from reasonloop.agents import AgentRuntime
from reasonloop.agents.pal import PAL_PROMPT, build_pal_agent
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolStep, Trajectory

__all__ = ["main"]

PROMPT = "A shop sells pens in packs of 12. A school needs 250 pens. How many packs must it buy?"


def recorded_episode() -> Trajectory:
    """What a model wrote for PROMPT: a first program with a bug, then the fix."""
    first = "```python\nimport math\npacks = math.ceil(250 / pack_size)\nprint(packs)\n```"
    fixed = "```python\nimport math\npack_size = 12\nanswer = math.ceil(250 / pack_size)\n```"
    return Trajectory(
        task_id="pens",
        messages=[{"role": "system", "content": PAL_PROMPT}, {"role": "user", "content": PROMPT}],
        steps=[
            PolicyStep(text=f"Divide and round up.\n{first}", finish_reason="stop", model="recorded-model"),
            PolicyStep(text=f"I forgot to define pack_size.\n{fixed}", finish_reason="stop", model="recorded-model"),
        ],
    )


def show(traj: Trajectory) -> None:
    print(f"task {traj.task_id}: {traj.status}, answer {traj.final_answer!r}")
    for i, step in enumerate(traj.steps):
        if isinstance(step, PolicyStep):
            print(f"  {i} policy: {step.text.splitlines()[0]}")
        elif isinstance(step, ToolStep):
            last = step.result.to_observation().strip().splitlines()
            print(f"  {i} {step.call.name} ({step.result.status.value}): {last[-1] if last else ''}")
        elif isinstance(step, NoteStep):
            print(f"  {i} verdict: {step.data.get('verdict')} (attempt {step.data.get('attempt')})")


async def main() -> Trajectory:
    agent = build_pal_agent(ReplayPolicy([recorded_episode()]), max_repairs=2)
    async with AgentRuntime(agent, run_id="example") as runtime:
        traj = await runtime.run(PROMPT, task_id="pens")
    show(traj)
    return traj


if __name__ == "__main__":
    asyncio.run(main())
