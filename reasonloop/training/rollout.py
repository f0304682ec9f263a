"""The rollout controller: one prompt -> one group of trajectories, through the agent graph.

The episodes are ordinary :class:`~reasonloop.agents.runtime.AgentRuntime` episodes of
the same agent users run; the trainable policy is the agent's policy.

* ``grpo``: M independent samples.
* ``arpo``: N global samples; whenever an unfinished trajectory gets a tool result,
  it generates its next segment, the branching rule compares that segment's entropy
  (first k tokens) with the trajectory's initial entropy, and on a branch Z new
  episodes are forked from the point right after the tool result (graph state and
  tool sessions forked with :meth:`AgentRuntime.fork`) and re-sample from there.
  Branching stops once the prompt owns M trajectories; if all finish earlier the
  group is topped up with fresh global samples.

Episodes advance in rounds: every active episode moves to its next decision point
concurrently, then the decisions are taken in a fixed order. Each episode samples
with its own seed, so a group depends only on its seed, never on thread timing.

Every trajectory's ``metadata["rollout"]`` records its role (``global``, ``branch``,
``top_up``), its initial entropy, each decision with the entropies that drove it
(:meth:`BranchDecision.as_dict` plus the fork step and tool round), and for a branch
the decision it was born from.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from reasonloop.agents.episode import Episode
from reasonloop.agents.runtime import AgentRuntime
from reasonloop.errors import ConfigError
from reasonloop.registry import Registry
from reasonloop.training.advantages import GroupShape
from reasonloop.training.branching import BranchConfig, decide_branch, window_entropy
from reasonloop.trajectory.schema import PolicyStep, Step, ToolStep, Trajectory

__all__ = [
    "ROLLOUTS",
    "Group",
    "RolloutConfig",
    "group_shape",
    "premonitor_split",
    "rollout_group",
    "tool_entropy_profile",
]

RolloutMode = Literal["grpo", "arpo"]


@dataclass(frozen=True, kw_only=True)
class RolloutConfig:
    """How a prompt's group is sampled (defaults are the paper's)."""

    mode: RolloutMode = "arpo"
    """``grpo`` (independent samples) or ``arpo`` (entropy-adaptive branching)."""
    group_size: int = 16
    """M: trajectories per prompt."""
    global_samples: int | None = None
    """N: initial full samples (ARPO; ``None``: half of M); GRPO uses M."""
    branch_factor: int = 1
    """Z: branches created per positive decision."""
    branch: BranchConfig = field(default_factory=BranchConfig)
    """The branching rule's parameters (mode, alpha, beta, tau, window k, AEPO penalty)."""
    top_up: bool = True
    """Fill the group to M with fresh global samples when all finish early."""
    premonitor: bool = False
    """AEPO pre-monitoring: one probe trajectory sets the global/branch split of the prompt."""
    premonitor_beta: float = 1.0
    """Slope of the pre-monitoring split (see :func:`premonitor_split`)."""

    def __post_init__(self) -> None:
        if self.mode not in ROLLOUTS:
            ROLLOUTS.get(self.mode)
        if self.group_size < 1 or self.branch_factor < 1:
            raise ConfigError("group_size and branch_factor must be >= 1")
        if self.global_samples is not None and not 1 <= self.global_samples <= self.group_size:
            raise ConfigError("global_samples must be in [1, group_size]")

    @property
    def n_global(self) -> int:
        """N, resolved (half of M by default, as in the paper's 8 of 16)."""
        return self.global_samples if self.global_samples is not None else max(1, self.group_size // 2)


@dataclass(kw_only=True)
class Group:
    """The trajectories of one prompt and their branching structure."""

    task_id: str
    trajectories: list[Trajectory]
    shape: GroupShape
    metrics: dict[str, float] = field(default_factory=dict)


def tool_entropy_profile(traj: Trajectory, window: int = 20) -> tuple[float, float | None]:
    """``(H_init, mean H after tool results)``: window entropies of the first policy
    step and of the policy steps that directly follow a tool result (``None`` if none)."""
    policy = [s for s in traj.steps if isinstance(s, PolicyStep)]
    h_init = window_entropy(policy[0].entropies or [], window) if policy else 0.0
    after: list[float] = []
    saw_tool = False
    for step in traj.steps:
        if isinstance(step, PolicyStep):
            if saw_tool:
                after.append(window_entropy(step.entropies or [], window))
            saw_tool = False
        elif isinstance(step, ToolStep):
            saw_tool = True
    return h_init, (sum(after) / len(after) if after else None)


def premonitor_split(h_root: float, h_tool: float | None, group_size: int, beta: float = 1.0) -> int:
    """AEPO pre-monitoring: global samples for a prompt from one probe trajectory.

    The branch share is ``sigmoid(beta * (H_tool - H_root))``: a prompt whose tool
    results raise the entropy gets more of its budget as branches. Returns N in
    ``[1, group_size]`` (``group_size // 2`` when the probe used no tool).
    """
    if h_tool is None:
        return max(1, group_size // 2)
    share = 1.0 / (1.0 + math.exp(-beta * (h_tool - h_root)))
    return min(group_size, max(1, group_size - round(group_size * share)))


def group_shape(trajectories: Sequence[Trajectory]) -> GroupShape:
    """The :class:`GroupShape` of a group from its trajectories' parent links."""
    index = {t.id: i for i, t in enumerate(trajectories)}
    parents = [index.get(t.parent_id) if t.parent_id is not None else None for t in trajectories]
    forks = [t.fork_step if p is not None else None for t, p in zip(trajectories, parents, strict=True)]
    return GroupShape(n_steps=[len(t.steps) for t in trajectories], parents=parents, fork_steps=forks)


@dataclass(kw_only=True, eq=False)
class _Node:
    ep: Episode
    parent: int | None
    h_init: float | None
    record: dict[str, Any]


@dataclass(kw_only=True)
class _Point:
    """A decision point: the episode generated a segment right after a tool result."""

    state: Any
    next: tuple[str, ...]
    fork_step: int
    entropies: list[float]
    tool_round: int


async def _start(runtime: AgentRuntime, prompt: Any, task_id: str, seed: int, sample: int, role: str,
                 metadata: dict[str, Any]) -> _Node:
    ep = await runtime.start(prompt, task_id=task_id, sample=sample, seed=seed + sample, metadata=metadata)
    record: dict[str, Any] = {"role": role, "h_init": None, "decisions": []}
    ep.metadata["rollout"] = record
    return _Node(ep=ep, parent=None, h_init=None, record=record)


def _first_entropy(node: _Node, steps: Sequence[Step], window: int) -> None:
    if node.h_init is None:
        first = next((s for s in steps if isinstance(s, PolicyStep)), None)
        if first is not None:
            node.h_init = window_entropy(first.entropies or [], window)
            node.record["h_init"] = node.h_init
            node.record["entropy_kind"] = first.entropy_kind


async def _next_point(runtime: AgentRuntime, node: _Node, window: int) -> _Point | None:
    """Advance to the segment after the next tool result (``None``: the episode ended first)."""
    ep = node.ep
    while not ep.done:
        steps = await runtime.advance(ep, until="tools")
        _first_entropy(node, steps, window)
        if ep.done:
            return None
        if not any(isinstance(s, ToolStep) for s in steps):
            continue  # feedback without a tool result: not a branching point
        state, nxt, fork_step = ep.snapshot_state(), ep.next, ep.num_steps
        segment = await runtime.advance(ep, until="policy")
        policy = next((s for s in segment if isinstance(s, PolicyStep)), None)
        return _Point(state=state, next=nxt, fork_step=fork_step, tool_round=int(state.get("tool_calls", 0)),
                      entropies=list(policy.entropies or []) if policy is not None else [])
    return None


def _branch(runtime: AgentRuntime, node: _Node, point: _Point, sample: int, parent: int,
            decision: dict[str, Any]) -> _Node:
    child = runtime.fork(node.ep, sample=sample)
    # The decision needed the segment after the tool result; the branch starts before it.
    child.state, child.next, child.fork_step = point.state, point.next, point.fork_step
    record: dict[str, Any] = {"role": "branch", "h_init": node.h_init, "decisions": [],
                              "branched_from": {"parent_id": node.ep.id, "fork_step": point.fork_step,
                                                "tool_round": point.tool_round, "decision": decision}}
    child.metadata["rollout"] = record
    return _Node(ep=child, parent=parent, h_init=node.h_init, record=record)


async def _grpo(runtime: AgentRuntime, prompt: Any, task_id: str, seed: int, cfg: RolloutConfig,
                rng: random.Random, metadata: dict[str, Any]) -> list[_Node]:
    nodes = [await _start(runtime, prompt, task_id, seed, s, "global", metadata) for s in range(cfg.group_size)]

    async def run(node: _Node) -> None:
        steps = await runtime.advance(node.ep, until=None)
        _first_entropy(node, steps, cfg.branch.window)
        await runtime.finish(node.ep)

    await asyncio.gather(*(run(n) for n in nodes))
    return nodes


async def _arpo(runtime: AgentRuntime, prompt: Any, task_id: str, seed: int, cfg: RolloutConfig,
                rng: random.Random, metadata: dict[str, Any]) -> list[_Node]:
    window, budget = cfg.branch.window, cfg.group_size
    n_global = cfg.n_global
    nodes: list[_Node] = []
    if cfg.premonitor:
        probe = await _start(runtime, prompt, task_id, seed, 0, "global", metadata)
        probe.record["probe"] = True
        steps = await runtime.advance(probe.ep, until=None)
        _first_entropy(probe, steps, window)
        traj = await runtime.finish(probe.ep)
        n_global = premonitor_split(*tool_entropy_profile(traj, window), budget, cfg.premonitor_beta)
        probe.record["premonitor_global_samples"] = n_global
        nodes.append(probe)
    active = [await _start(runtime, prompt, task_id, seed, s, "global", metadata) for s in range(len(nodes), n_global)]
    nodes.extend(active)
    consecutive = 0
    while active or (cfg.top_up and len(nodes) < budget):
        if not active:
            active = [await _start(runtime, prompt, task_id, seed, s, "top_up", metadata)
                      for s in range(len(nodes), budget)]
            nodes.extend(active)
        points = await asyncio.gather(*(_next_point(runtime, n, window) for n in active))
        following: list[_Node] = []
        for node, point in zip(active, points, strict=True):
            if point is not None:
                h_step = window_entropy(point.entropies, window)
                decision = decide_branch(h_step, node.h_init or 0.0, cfg.branch, rng=rng, consecutive=consecutive)
                entry: dict[str, Any] = {**decision.as_dict(), "fork_step": point.fork_step,
                                         "tool_round": point.tool_round, "branches": 0}
                node.record["decisions"].append(entry)
                consecutive = consecutive + 1 if decision.branch else 0
                parent = nodes.index(node)
                made = 0
                while decision.branch and made < cfg.branch_factor and len(nodes) < budget:
                    child = _branch(runtime, node, point, len(nodes), parent, dict(entry))
                    nodes.append(child)
                    following.append(child)
                    made += 1
                entry["branches"] = made
            if node.ep.done:
                await runtime.finish(node.ep)
            else:
                following.append(node)
        active = following
    return nodes


_RolloutFn = Callable[
    [AgentRuntime, Any, str, int, RolloutConfig, random.Random, dict[str, Any]], Awaitable[list[_Node]]
]
ROLLOUTS: Registry[_RolloutFn] = Registry("rollout mode")
ROLLOUTS.register("grpo", _grpo)
ROLLOUTS.register("arpo", _arpo)


def _group_metrics(trajs: Sequence[Trajectory], nodes: Sequence[_Node], window: int) -> dict[str, float]:
    decisions = [d for n in nodes for d in n.record["decisions"]]
    branches = [n for n in nodes if n.parent is not None]
    after = [h for t in trajs if (h := tool_entropy_profile(t, window)[1]) is not None]
    inits = [n.h_init for n in nodes if n.h_init is not None]
    return {
        "trajectories": float(len(trajs)),
        "branches": float(len(branches)),
        "decisions": float(len(decisions)),
        "branch_tool_round_mean": (sum(n.record["branched_from"]["tool_round"] for n in branches) / len(branches)
                                   if branches else 0.0),
        "entropy_init": sum(inits) / len(inits) if inits else 0.0,
        "entropy_after_tool": sum(after) / len(after) if after else 0.0,
        "tool_calls_per_traj": sum(len(t.tool_steps()) for t in trajs) / max(1, len(trajs)),
        "sampled_tokens": float(_sampled_tokens(trajs)),
    }


def _sampled_tokens(trajs: Sequence[Trajectory]) -> int:
    """Tokens sampled for the group, shared prefixes counted once."""
    total = 0
    for t in trajs:
        start = t.fork_step or 0
        total += sum(len(s.token_ids) for s in t.steps[start:] if isinstance(s, PolicyStep))
    return total


async def rollout_group(
    runtime: AgentRuntime,
    prompt: str | Sequence[dict[str, Any]],
    *,
    task_id: str,
    seed: int,
    config: RolloutConfig,
    metadata: dict[str, Any] | None = None,
) -> Group:
    """Sample one prompt's group through ``runtime``'s agent.

    Args:
        runtime: Runs the agent whose policy is the trainable model (its scorer, if
            any, attaches the rewards as each trajectory finishes).
        prompt: The task prompt (text or chat messages).
        task_id: Recorded on every trajectory.
        seed: Base seed; global sample ``s`` samples with ``seed + s``, branches with
            seeds derived from their parent's, the sampled-mode draws from ``seed``.
        config: Mode, budget and branching rule.
        metadata: Copied into each trajectory's metadata.

    Returns:
        The trajectories (roots first, branches in the order they were made), the
        :class:`GroupShape` for the advantage estimators and the group's metrics.
    """
    rng = random.Random(seed)
    nodes = await ROLLOUTS.get(config.mode)(runtime, prompt, task_id, seed, config, rng, dict(metadata or {}))
    trajs = [n.ep.trajectory for n in nodes]
    if any(t is None for t in trajs):
        raise RuntimeError("rollout ended with an unfinished episode")
    done = [t for t in trajs if t is not None]
    return Group(task_id=task_id, trajectories=done, shape=group_shape(done),
                 metrics=_group_metrics(done, nodes, config.branch.window))
