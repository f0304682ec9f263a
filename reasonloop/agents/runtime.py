"""Runs agent graphs as recorded episodes: one, many, or branching.

    runtime = AgentRuntime(agent, store=RunStore("runs.db"), run_id="exp1")
    traj = await runtime.run("What is 6 * 7?", task_id="q1")
    trajs = await runtime.run_many(tasks, samples=4, concurrency=8)   # resumes: skips stored keys

Branching (what ARPO rollouts use): start an episode, advance it to just after a
tools node, fork it (graph state copied to a new thread, tool sessions forked
through their factories), and finish parent and branches independently::

    ep = await runtime.start(prompt, task_id="q1")
    await runtime.advance(ep, until="tools")
    branch = runtime.fork(ep)              # parent_id/fork_step set on its trajectory
    parent, child = await runtime.finish(ep), await runtime.finish(branch)

A runtime is bound to the event loop it first runs in (its SQLite checkpointer
connection is); close it with ``await runtime.aclose()`` or ``async with``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphRecursionError
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StreamMode
from pydantic import TypeAdapter

from reasonloop.agents.checkpoints import Checkpointing, open_checkpointer
from reasonloop.agents.episode import AgentTask, Episode, branch_seed, sample_seed
from reasonloop.agents.nodes import POLICY_NODE, TOOLS_NODE
from reasonloop.agents.react import Agent
from reasonloop.agents.state import AgentContext, ReactState
from reasonloop.errors import ConfigError
from reasonloop.trajectory.schema import Reward, Step, Trajectory, new_id

__all__ = ["AgentRuntime", "Checkpointing", "Scorer", "StepCallback"]

StepCallback = Callable[[dict[str, Any]], Any]
Scorer = Callable[[Trajectory], Sequence[Reward]]
"""Receives each streamed step event ``{"episode_id", "node", "index", "step"}``; may be async."""


_STEPS: TypeAdapter[list[Step]] = TypeAdapter(list[Step])
_UNTIL = {"policy": POLICY_NODE, "tools": TOOLS_NODE}


class AgentRuntime:
    """Drives an :class:`Agent`'s graph and records each episode as a :class:`Trajectory`."""

    def __init__(
        self,
        agent: Agent,
        *,
        store: Any = None,
        run_id: str = "default",
        checkpointer: Checkpointing = None,
        concurrency: int = 8,
        on_step: StepCallback | None = None,
        scorer: Scorer | None = None,
    ) -> None:
        """Args:
        agent: What :func:`build_react_agent` returned.
        store: Anything with ``put(traj)`` (and ``finished_keys(run_id)`` for resume),
            e.g. a :class:`~reasonloop.trajectory.store.RunStore`.
        run_id: Run id stamped on every trajectory (part of the store key).
        checkpointer: Where graph checkpoints go (see :data:`Checkpointing`). In-memory
            threads are dropped when their episode finishes; SQLite ones are kept.
        concurrency: Default number of episodes :meth:`run_many` runs at once.
        on_step: Called with every streamed step of every episode.
        scorer: Rewards for a finished trajectory (a task's verifier), attached before
            it is stored; a scorer that raises is recorded in ``metadata["scorer_error"]``.
        """
        if concurrency < 1:
            raise ConfigError("concurrency must be >= 1")
        if not run_id:
            raise ConfigError("run_id must be a non-empty string")
        self.agent = agent
        self.store = store
        self.run_id = run_id
        self.concurrency = concurrency
        self.on_step = on_step
        self.scorer = scorer
        self._checkpointing = checkpointer
        self._graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
        self._saver: BaseCheckpointSaver[Any] | None = None
        self._owns_memory = False
        self._conn: Any = None

    # -- checkpointer and graph ------------------------------------------------------

    @property
    def durable(self) -> bool:
        """Whether checkpoints outlive the process (SQLite path or a caller's saver)."""
        return self._saver is not None and not self._owns_memory

    async def _ensure_graph(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        if self._graph is None:
            opened = await open_checkpointer(self._checkpointing, self.agent.graph.checkpointer)
            self._saver, self._owns_memory, self._conn = opened.saver, opened.owned_memory, opened.connection
            uncheckpointed = self._saver is None and self.agent.graph.checkpointer is None
            # Without a checkpointer the agent's own compiled graph is the graph (no compile per runtime).
            self._graph = self.agent.graph if uncheckpointed else self.agent.compile(self._saver)
        return self._graph

    async def aclose(self) -> None:
        """Close the SQLite checkpointer connection, if this runtime opened one."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        self._graph = None

    async def __aenter__(self) -> AgentRuntime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _config(self, ep: Episode) -> RunnableConfig:
        return {"configurable": {"thread_id": ep.thread_id}, "recursion_limit": self.agent.recursion_limit}

    # -- episodes ----------------------------------------------------------------------

    async def start(
        self,
        prompt: str | Sequence[dict[str, Any]],
        *,
        task_id: str,
        sample: int = 0,
        seed: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Episode:
        """Open an episode: tokenise the prompt and open the tool session; nothing runs yet.

        An episode fresh from ``start`` can already be forked (before any policy call).
        """
        await self._ensure_graph()
        messages = self.agent.messages(prompt)
        episode_id = new_id()
        state = self.agent.initial_state(messages)
        return Episode(
            id=episode_id,
            task_id=task_id,
            sample=sample,
            seed=seed,
            metadata=dict(metadata or {}),
            messages=messages,
            prompt_token_ids=list(state["token_ids"] or []),
            context=self.agent.context(episode_id=episode_id, seed=seed),
            state=state,
        )

    async def advance(self, ep: Episode, *, until: str | None = "tools", on_step: StepCallback | None = None) -> list[Step]:
        """Run ``ep`` until just after the next ``until`` node (``"tools"`` or
        ``"policy"``) or the end of the graph (``until=None``).

        Returns:
            The steps recorded during this call.
        """
        if until is not None and until not in _UNTIL:
            raise ConfigError(f"until: expected one of {sorted(_UNTIL)} or None, got {until!r}")
        return _STEPS.validate_python(await self._drive(ep, until, on_step))

    def fork(self, ep: Episode, *, sample: int | None = None, seed: int | None = None) -> Episode:
        """Branch ``ep`` at its current checkpoint.

        The branch gets a copy of the graph state (written to its own thread when it
        first advances) and a fork of every open tool session; from then on parent and
        branch are independent. Its trajectory records ``parent_id`` (the parent's
        trajectory id) and ``fork_step`` (the number of steps they share). ARPO
        branching is exactly this: advance to a tools node, fork k times, finish all.

        Args:
            ep: A started, unfinished episode that is not advancing right now.
            sample: Sample index of the branch (default: the parent's).
            seed: Sampling seed of the branch (default: :func:`branch_seed`, never the parent's).
        """
        if ep.trajectory is not None:
            raise ConfigError(f"episode {ep.id} is finished; its tool sessions are closed")
        ep.branches += 1
        child_id = new_id()
        child_seed = seed if seed is not None else branch_seed(ep.seed, ep.branches)
        session = ep.context.session.fork(child_id)
        return Episode(
            id=child_id,
            task_id=ep.task_id,
            sample=ep.sample if sample is None else sample,
            seed=child_seed,
            metadata=dict(ep.metadata),
            messages=ep.messages,
            prompt_token_ids=list(ep.prompt_token_ids),
            context=AgentContext(session=session, episode_id=child_id, seed=child_seed),
            state=ep.snapshot_state(),
            next=ep.next,
            parent_id=ep.id,
            fork_step=ep.num_steps,
        )

    async def finish(self, ep: Episode, *, on_step: StepCallback | None = None) -> Trajectory:
        """Run ``ep`` to the end, close its tools, record (and store) its trajectory."""
        if ep.trajectory is not None:
            return ep.trajectory
        try:
            await self._drive(ep, None, on_step)
        except GraphRecursionError as exc:  # the limits should end the episode first
            ep.error = f"recursion limit {self.agent.recursion_limit} reached: {exc}"
        except Exception as exc:  # one failing episode is recorded, not raised
            ep.error = f"{type(exc).__name__}: {exc}"
        finally:
            ep.context.session.close()
        ep.trajectory = self._score(self._record(ep))
        await self._store(ep.trajectory)
        if self._owns_memory and self._saver is not None and ep.submitted:
            await self._saver.adelete_thread(ep.thread_id)
        return ep.trajectory

    async def _drive(self, ep: Episode, until: str | None, on_step: StepCallback | None) -> list[dict[str, Any]]:
        graph = await self._ensure_graph()
        if ep.done:
            return []
        if until is not None and self._saver is None:
            raise ConfigError("advancing to a node needs a checkpointer (checkpointer=False disables them)")
        cfg = self._config(ep)
        graph_input: Any = None
        if not ep.submitted:
            if ep.next == (TOOLS_NODE,):  # a branch made after a policy call: resume at its tools turn
                await graph.aupdate_state(cfg, ep.state, as_node=POLICY_NODE)
            else:
                graph_input = ep.state
            ep.submitted = True
        callbacks = [cb for cb in (self.on_step, on_step) if cb is not None]
        modes: list[StreamMode] = ["custom"] if self._saver is not None else ["custom", "values"]
        new: list[dict[str, Any]] = []
        try:
            async for mode, data in graph.astream(  # type: ignore[misc]
                graph_input, cfg, context=ep.context, stream_mode=modes,
                interrupt_after=[_UNTIL[until]] if until else None,
            ):
                if mode == "values":
                    ep.state = cast(ReactState, data)
                    continue
                event = cast(dict[str, Any], data)
                new.append(event["step"])
                for cb in callbacks:
                    if inspect.isawaitable(result := cb(event)):
                        await result
        finally:  # also after a failure: the trajectory keeps the steps recorded so far
            if self._saver is not None:
                snap = await graph.aget_state(cfg)
                if snap.values:
                    ep.state, ep.next = cast(ReactState, snap.values), tuple(snap.next)
            else:
                ep.next = ()
        return new

    def _record(self, ep: Episode) -> Trajectory:
        st = ep.state
        status = st.get("status", "running")
        reason = st.get("reason")
        if ep.error is not None:
            status = "truncated" if ep.error.startswith("recursion limit") else "error"
            reason = ep.error
        elif status == "running":
            status, reason = "error", "the graph stopped before the episode ended"
        metadata = {**ep.metadata, "tool_format": self.agent.policy.tool_format}
        if reason is not None:
            metadata["stop_reason"] = reason
        if self.durable:
            metadata["thread_id"] = ep.thread_id
        steps = st.get("steps", [])
        finished = time.time()
        return Trajectory.model_validate({
            "id": ep.id, "run_id": self.run_id, "task_id": ep.task_id, "sample": ep.sample, "seed": ep.seed,
            "parent_id": ep.parent_id, "fork_step": ep.fork_step,
            "agent": self.agent.name, "model": self.agent.policy.name,
            "messages": ep.messages, "tools": [s.openai_schema() for s in self.agent.specs],
            "prompt_token_ids": ep.prompt_token_ids, "steps": steps,
            "final_answer": st.get("final_answer"), "status": status,
            "error": reason if status == "error" else None,
            "metrics": _metrics(st, finished - ep.created_at),
            "metadata": metadata, "created_at": ep.created_at, "finished_at": finished,
        })

    def _score(self, traj: Trajectory) -> Trajectory:
        if self.scorer is None:
            return traj
        try:
            traj.rewards.extend(self.scorer(traj))
        except Exception as exc:  # a broken scorer must not lose the episode
            traj.metadata["scorer_error"] = f"{type(exc).__name__}: {exc}"
        return traj

    async def _store(self, traj: Trajectory) -> None:
        if self.store is not None:
            await asyncio.to_thread(self.store.put, traj)

    # -- whole episodes ------------------------------------------------------------------

    async def run(
        self,
        prompt: str | Sequence[dict[str, Any]],
        *,
        task_id: str,
        sample: int = 0,
        seed: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        on_step: StepCallback | None = None,
    ) -> Trajectory:
        """Run one episode to the end and return (and store) its trajectory.

        Failures inside the episode (a policy that raises, a graph error) give a
        trajectory with status ``error`` and the message; tools are always closed.
        """
        try:
            ep = await self.start(prompt, task_id=task_id, sample=sample, seed=seed, metadata=metadata)
        except Exception as exc:
            traj = self._failed(prompt, task_id, sample, seed, metadata, exc)
            await self._store(traj)
            return traj
        return await self.finish(ep, on_step=on_step)

    def _failed(
        self, prompt: Any, task_id: str, sample: int, seed: int | None, metadata: Mapping[str, Any] | None, exc: Exception
    ) -> Trajectory:
        try:
            messages = self.agent.messages(prompt)
        except Exception:  # the prompt itself is what failed; record the episode without it
            messages = []
        return Trajectory(
            run_id=self.run_id, task_id=task_id, sample=sample, seed=seed, agent=self.agent.name,
            model=self.agent.policy.name, messages=messages, status="error", error=f"{type(exc).__name__}: {exc}",
            metadata=dict(metadata or {}), finished_at=time.time(),
        )

    async def run_many(
        self,
        tasks: Iterable[AgentTask | Mapping[str, Any]],
        *,
        samples: int = 1,
        concurrency: int | None = None,
        skip_finished: bool = True,
        on_step: StepCallback | None = None,
    ) -> list[Trajectory]:
        """Run ``samples`` episodes of every task, ``concurrency`` at a time.

        With a store and ``skip_finished``, keys ``(run_id, task_id, sample, seed)``
        already stored are skipped (resume after a crash). Returns the trajectories
        run by this call, in task-then-sample order.
        """
        if samples < 1:
            raise ConfigError("samples must be >= 1")
        limit = asyncio.Semaphore(concurrency or self.concurrency)
        done: set[Any] = set()
        if skip_finished and self.store is not None:
            done = set(await asyncio.to_thread(self.store.finished_keys, self.run_id))
        jobs = [
            (task, s, sample_seed(task.seed, s))
            for task in map(AgentTask.coerce, tasks)
            for s in range(samples)
            if (self.run_id, task.task_id, s, sample_seed(task.seed, s)) not in done
        ]

        async def one(task: AgentTask, sample: int, seed: int | None) -> Trajectory:
            async with limit:
                return await self.run(
                    task.prompt, task_id=task.task_id, sample=sample, seed=seed, metadata=task.metadata, on_step=on_step
                )

        return list(await asyncio.gather(*(one(*job) for job in jobs)))

    async def stream(
        self, prompt: str | Sequence[dict[str, Any]], *, task_id: str, **options: Any
    ) -> AsyncIterator[dict[str, Any] | Trajectory]:
        """Run one episode, yielding each step event as it happens, then the trajectory."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        task = asyncio.create_task(self.run(prompt, task_id=task_id, on_step=queue.put_nowait, **options))
        try:
            while not (task.done() and queue.empty()):
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            yield task.result()
        finally:
            if not task.done():
                task.cancel()

    async def state(self, thread_id: str) -> dict[str, Any] | None:
        """The latest checkpointed graph state of a thread (``None`` if there is none)."""
        graph = await self._ensure_graph()
        if self._saver is None:
            return None
        snap = await graph.aget_state({"configurable": {"thread_id": thread_id}})
        return dict(snap.values) if snap.values else None


def _metrics(state: Mapping[str, Any], wall_s: float) -> dict[str, float]:
    return {
        "wall_s": wall_s,
        "policy_steps": float(state.get("policy_steps", 0)),
        "tool_calls": float(state.get("tool_calls", 0)),
        "feedback": float(state.get("feedback", 0)),
    }
