"""The two nodes of the ReAct graph and the edge between them.

* ``policy``: one policy call. It records a :class:`PolicyStep`, appends the
  assistant turn to the context, and decides the outcome: answered (``finished``),
  out of budget (``truncated``, with a :class:`NoteStep` saying why), too many
  failed calls (``error``), or the environment's turn (``running``).
* ``tools``: the environment's reply to an assistant turn. It runs every tool call
  of the turn through the episode's :class:`ToolsetSession` (one :class:`ToolStep`
  each) and turns everything else that needs an answer into an observation the
  model reads (a :class:`NoteStep` with ``role="user"``): tool calls that could not
  be decoded, a turn cut at the token limit, an empty turn, a failed policy call.

Token ids: the policy's ``extend()`` renders the whole batch of new messages of a
tools turn at once (chat templates may join consecutive tool messages), and those
forced ids are put on the *last* step of the batch; the other steps of the batch
keep empty ``token_ids``. So ``prompt_token_ids + all steps' token_ids`` is exactly
the context the policy saw.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.graph import END
from langgraph.runtime import Runtime

from reasonloop.agents.state import AgentContext, AgentLimits, ReactState
from reasonloop.errors import ConfigError
from reasonloop.policy.base import Completion, Context, Policy, SamplingParams, ToolSpec
from reasonloop.policy.parsing import extract_answer
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolCall, ToolResult, ToolStep

__all__ = [
    "POLICY_NODE",
    "TOOLS_NODE",
    "ReactDeps",
    "make_policy_node",
    "make_tools_node",
    "route_after_policy",
]

POLICY_NODE = "policy"
TOOLS_NODE = "tools"

NodeFn = Callable[[ReactState, Runtime[AgentContext]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, kw_only=True)
class ReactDeps:
    """What the nodes share across episodes (fixed when the graph is built)."""

    policy: Policy
    """Writes the assistant turns."""
    specs: Sequence[ToolSpec]
    """The tools offered to the policy."""
    sampling: SamplingParams
    """Sampling settings of every policy call (the seed is set per call)."""
    limits: AgentLimits
    """Episode budgets."""


def _context(runtime: Runtime[AgentContext]) -> AgentContext:
    ctx = runtime.context
    if not isinstance(ctx, AgentContext):
        raise ConfigError("the agent graph needs its per-episode context: pass context=agent.context(...)")
    return ctx


def _emit(runtime: Runtime[AgentContext], node: str, index: int, step: dict[str, Any]) -> None:
    """Stream one recorded step (LangGraph ``custom`` stream mode)."""
    runtime.stream_writer({"episode_id": runtime.context.episode_id, "node": node, "index": index, "step": step})


def _seeded(sampling: SamplingParams, seed: int | None, call: int) -> SamplingParams:
    """A distinct, reproducible seed per policy call of a seeded episode."""
    if seed is None:
        return sampling
    return dataclasses.replace(sampling, seed=(seed * 1_000_003 + call) % (2**31))


def _policy_step(completion: Completion, sampling: SamplingParams, started: float, duration: float) -> PolicyStep:
    return PolicyStep(
        node=POLICY_NODE,
        started_at=started,
        duration_s=duration,
        token_ids=completion.token_ids,
        text=completion.text,
        logprobs=completion.logprobs,
        entropies=completion.entropies,
        entropy_kind=completion.entropy_kind,
        top_k=completion.top_k,
        finish_reason=completion.finish_reason,
        tool_calls=completion.tool_calls,
        parse_errors=completion.parse_errors,
        usage=completion.usage,
        model=completion.model,
        sampling=sampling.as_dict(),
        cached=completion.cached,
    )


def _answered(c: Completion) -> bool:
    if c.tool_calls or c.parse_errors or c.finish_reason == "error" or not c.text.strip():
        return False
    return c.finish_reason != "length" or extract_answer(c.text) is not None


def _stop_reason(state: ReactState, c: Completion, limits: AgentLimits) -> tuple[str, str] | None:
    """(status, reason) when the episode cannot go on to the tools turn."""
    calls = state["policy_steps"] + 1
    if c.finish_reason == "error" and state["errors"] + 1 >= limits.max_errors:
        return "error", f"{limits.max_errors} policy calls in a row failed; last: {c.text or 'no explanation'}"
    if calls >= limits.max_steps:
        return "truncated", f"reached max_steps={limits.max_steps} policy calls without a final answer"
    wanted = state["tool_calls"] + len(c.tool_calls)
    if wanted > limits.max_tool_calls:
        left = limits.max_tool_calls - state["tool_calls"]
        return "truncated", (
            f"the turn asks for {len(c.tool_calls)} tool calls but only {left} of "
            f"max_tool_calls={limits.max_tool_calls} remain"
        )
    return None


def make_policy_node(deps: ReactDeps) -> NodeFn:
    """The ``policy`` node: one policy call, recorded, and the episode's outcome."""

    async def policy(state: ReactState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        ctx = _context(runtime)
        n = state["policy_steps"]
        sampling = _seeded(deps.sampling, ctx.seed, n)
        token_ids = state.get("token_ids")
        started, t0 = time.time(), time.perf_counter()
        completion = await deps.policy.generate(
            Context(messages=state["messages"], token_ids=token_ids), deps.specs, sampling
        )
        step = _policy_step(completion, sampling, started, time.perf_counter() - t0).model_dump(mode="json")
        steps = [step]
        update: dict[str, Any] = {"policy_steps": n + 1, "steps": steps}
        if completion.finish_reason == "error":
            # Nothing was sampled: the failed turn is recorded but never enters the context.
            update["errors"] = state["errors"] + 1
        else:
            update["errors"] = 0
            update["messages"] = [*state["messages"], completion.message()]
            if token_ids is not None:
                update["token_ids"] = token_ids + completion.token_ids
        if _answered(completion):
            answer = extract_answer(completion.text)
            update["final_answer"] = answer if answer is not None else completion.text.strip()
            update["status"] = "finished"
        elif (stop := _stop_reason(state, completion, deps.limits)) is not None:
            update["status"], update["reason"] = stop
            steps.append(NoteStep(node=POLICY_NODE, text=stop[1], data={"status": stop[0]}).model_dump(mode="json"))
        base = len(state["steps"])
        for i, s in enumerate(steps):
            _emit(runtime, POLICY_NODE, base + i, s)
        return update

    return policy


async def route_after_policy(state: ReactState) -> str:
    """``tools`` while the episode runs, else the end of the graph.

    Async on purpose: LangGraph runs a sync edge function of an async graph in a
    worker thread, a thread hop per turn for a dictionary lookup.
    """
    return TOOLS_NODE if state["status"] == "running" else END


def _feedback(step: dict[str, Any]) -> list[tuple[str, str]]:
    """(reason, text) observations for what a policy step needs answered besides tool calls."""
    notes = [("parse_error", f"Your tool call could not be read: {err}") for err in step["parse_errors"]]
    if step["tool_calls"] or notes:
        return notes
    if step["finish_reason"] == "error":
        return [("policy_error", f"The model call failed: {step['text'] or 'no explanation'}. Try again.")]
    if not step["text"].strip():
        return [("empty", "Your reply was empty. Call a tool, or give the final answer as <answer>...</answer>.")]
    if step["finish_reason"] == "length":
        return [("length", "Your reply was cut off at the token limit before a tool call or a final answer. "
                 "Continue, more briefly.")]
    return []


def _tool_message(call: ToolCall, result: ToolResult, tool_format: str) -> dict[str, Any]:
    content = result.to_observation()
    if tool_format == "openai":
        return {"role": "tool", "tool_call_id": call.id, "content": content}
    return {"role": "tool", "name": call.name, "content": content}


def make_tools_node(deps: ReactDeps) -> NodeFn:
    """The ``tools`` node: run the turn's calls and answer everything else."""

    async def tools(state: ReactState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
        ctx = _context(runtime)
        last = state["steps"][-1]
        calls = [ToolCall.model_validate(c) for c in last["tool_calls"]]
        notes = _feedback(last)
        fmt = deps.policy.tool_format
        new_messages: list[dict[str, Any]] = []
        pending: list[ToolStep | NoteStep] = []
        dumped: list[dict[str, Any]] = []
        base = len(state["steps"])

        def produced(step: ToolStep | NoteStep) -> None:
            # Every step but the newest streams at once; the newest may still get the forced ids.
            if pending:
                dumped.append(pending.pop().model_dump(mode="json"))
                _emit(runtime, TOOLS_NODE, base + len(dumped) - 1, dumped[-1])
            pending.append(step)

        for call in calls:
            started, t0 = time.time(), time.perf_counter()
            result = await ctx.session.call(call)
            produced(ToolStep(node=TOOLS_NODE, started_at=started, duration_s=time.perf_counter() - t0,
                              call=call, result=result))
            new_messages.append(_tool_message(call, result, fmt))
        for reason, text in notes:
            produced(NoteStep(node=TOOLS_NODE, text=text, role="user", data={"reason": reason}))
            new_messages.append({"role": "user", "content": text})
        update: dict[str, Any] = {
            "messages": [*state["messages"], *new_messages],
            "tool_calls": state["tool_calls"] + len(calls),
            "feedback": state["feedback"] + len(notes),
            "steps": dumped,
        }
        if not pending:
            return update
        token_ids = state.get("token_ids")
        if token_ids is not None:
            forced = deps.policy.extend(
                Context(messages=state["messages"], token_ids=token_ids), new_messages, deps.specs
            )
            if forced:
                pending[0].token_ids = list(forced)
                update["token_ids"] = token_ids + pending[0].token_ids
        dumped.append(pending[0].model_dump(mode="json"))
        _emit(runtime, TOOLS_NODE, base + len(dumped) - 1, dumped[-1])
        return update

    return tools
