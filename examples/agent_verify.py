"""Verify-and-refine with Z3: an SMT-LIB script z3 rejects is repaired from z3's error.

    python examples/agent_verify.py

The policy replays a recorded episode (offline, same output every run); every script is
checked for real by the z3 binary. The same builder takes any checker: a tool, or a
function ``artefact -> (ok, feedback)``.
"""

from __future__ import annotations

import asyncio

from reasonloop.agents import AgentRuntime
from reasonloop.agents.verify import build_verify_refine_agent
from reasonloop.policy.replay import ReplayPolicy
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolStep, Trajectory

__all__ = ["main"]

PROMPT = "Three talks, ada, bob and cy, go in slots 1 to 3, all different; ada before bob; cy opens. Schedule them."
DECLS = "(declare-const ada Int) (declare-const bob Int) (declare-const cy Int)\n"
RULES = "(assert (distinct ada bob cy))\n(assert (< ada bob))\n(assert (= cy 1))\n"
FIRST = DECLS + "(assert (and (<= 1 ada 3) (<= 1 bob 3) (<= 1 cy 3))\n" + RULES + "(check-sat)\n(get-model)"
FIXED = DECLS + "(assert (and (<= 1 ada 3) (<= 1 bob 3) (<= 1 cy 3)))\n" + RULES + "(check-sat)\n(get-model)"


def recorded_episode(system: str) -> Trajectory:
    """What a model wrote for PROMPT: an unbalanced script, the fix, then the answer."""

    def turn(text: str) -> PolicyStep:
        return PolicyStep(text=text, finish_reason="stop", model="recorded-model")

    return Trajectory(
        task_id="talks",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": PROMPT}],
        steps=[turn(f"```smt2\n{FIRST}\n```"), turn(f"One parenthesis was missing.\n```smt2\n{FIXED}\n```"),
               turn("cy opens, then ada, then bob. <answer>cy=1, ada=2, bob=3</answer>")],
    )  # fmt: skip


def show(traj: Trajectory) -> None:
    print(f"task {traj.task_id}: {traj.status}, answer {traj.final_answer!r}")
    for i, step in enumerate(traj.steps):
        if isinstance(step, PolicyStep):
            print(f"  {i} policy: {step.text.splitlines()[0]}")
        elif isinstance(step, ToolStep):
            print(f"  {i} {step.call.name}: {step.result.to_observation().splitlines()[0]}")
        elif isinstance(step, NoteStep):
            print(f"  {i} verdict: {step.data.get('verdict')} (attempt {step.data.get('attempt')})")


async def main() -> Trajectory:
    system = build_verify_refine_agent(ReplayPolicy([])).system_prompt or ""
    agent = build_verify_refine_agent(ReplayPolicy([recorded_episode(system)]), max_rounds=2)
    async with AgentRuntime(agent, run_id="example") as runtime:
        traj = await runtime.run(PROMPT, task_id="talks")
    show(traj)
    return traj


if __name__ == "__main__":
    asyncio.run(main())
