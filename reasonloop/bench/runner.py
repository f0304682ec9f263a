"""The benchmark runner: a suite's tasks through an agent, concurrently, resumably.

    report = run_bench("arith", n=100, model="openai/gpt-4o-mini", samples=4, out_dir="runs/arith")

``out_dir`` holds ``config.json`` (the configuration and its hash), ``runs.sqlite``
(every trajectory, in a :class:`~reasonloop.trajectory.store.RunStore`),
``report.json``, ``summary.md`` and the plots. Each finished episode is committed to
the store before the next is counted, so a run killed at any moment loses only the
episodes in flight: ``resume=True`` skips the stored ones and reruns the rest, and
refuses to continue a run whose configuration changed. The report is computed from
the store, so it does not depend on how many times the run was resumed.

``model="expert"`` serves the suite's scripted expert (a replay policy over
:func:`~reasonloop.bench.experts.expert_recording`), the reference every suite must
score 100% with.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from reasonloop.bench.report import Report, build_report
from reasonloop.bench.suites import SUITES, Suite
from reasonloop.bench.task import Task
from reasonloop.errors import ConfigError
from reasonloop.trajectory.schema import Reward, Trajectory

__all__ = ["CONFIG_FILE", "EXPERT", "RUN_ID", "STORE_FILE", "BenchConfig", "arun_bench", "config_hash", "resolve_suite", "run_bench"]

RUN_ID = "bench"
"""Run id of every episode in a benchmark's store."""
EXPERT = "expert"
"""Model string that serves the suite's scripted expert."""
CONFIG_FILE = "config.json"
STORE_FILE = "runs.sqlite"


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """Everything that decides a benchmark's results (hashed into ``config.json``)."""

    suite: str
    """Suite name (see :data:`~reasonloop.bench.suites.SUITES`), or ``KIND:PATH`` for a data file
    (see :func:`~reasonloop.bench.loaders.file_suite`)."""
    n: int = 50
    """Number of tasks."""
    model: str = EXPERT
    """``expert``, ``replay:FILE``, ``hf:PATH`` or a LiteLLM model string."""
    agent: str = "react"
    """Agent builder name (see :data:`~reasonloop.agents.AGENTS`)."""
    samples: int = 1
    """Episodes per task (pass@k uses all of them)."""
    seed: int = 0
    """Seed of the task generator and of the episodes (sample ``s`` runs with ``seed + s``)."""
    difficulty: int | None = None
    """Suite difficulty (None: the suite's default)."""
    max_steps: int = 8
    """Policy calls per episode."""
    temperature: float = 0.0
    """Sampling temperature."""
    max_tokens: int = 1024
    """Tokens per policy call."""
    system_prompt: str | None = None
    """System prompt (None: the suite's)."""
    tool_format: str | None = None
    """Tool-call format of the policy (None: its default)."""
    api_base: str | None = None
    """Server URL for API models."""

    def __post_init__(self) -> None:
        if ":" not in self.suite and self.suite not in SUITES:
            SUITES.get(self.suite)  # raises with the valid names
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.samples < 1:
            raise ConfigError(f"samples must be >= 1, got {self.samples}")
        if self.max_steps < 1 or self.max_tokens < 1:
            raise ConfigError("max_steps and max_tokens must be >= 1")
        if self.temperature < 0:
            raise ConfigError("temperature must be >= 0")
        if not self.model.strip() or not self.agent.strip():
            raise ConfigError("model and agent must be non-empty")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def config_hash(config: BenchConfig) -> str:
    """SHA-256 of the canonical JSON of the configuration."""
    return hashlib.sha256(json.dumps(config.as_dict(), sort_keys=True).encode()).hexdigest()


def _check_out_dir(config: BenchConfig, out_dir: Path, resume: bool) -> None:
    """Refuse to mix runs: a changed config on resume, or an existing run without resume."""
    path = out_dir / CONFIG_FILE
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc}); use a new --out directory") from exc
        if not resume:
            raise ConfigError(f"{out_dir} already holds a benchmark run; pass resume=True (--resume) or a new --out")
        if saved.get("hash") != config_hash(config):
            old = saved.get("config", {})
            changed = sorted(k for k, v in config.as_dict().items() if old.get(k) != v)
            raise ConfigError(f"{out_dir} was run with another configuration (changed: {', '.join(changed) or '?'})")
        return
    if (out_dir / STORE_FILE).exists():
        raise ConfigError(f"{out_dir} has a run store but no {CONFIG_FILE}; use a new --out directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": 1, "hash": config_hash(config), "config": config.as_dict()}, indent=2))
    os.replace(tmp, path)


def resolve_suite(name: str) -> Suite:
    """A registered suite, or a data-file suite for ``KIND:PATH``."""
    if ":" in name:
        from reasonloop.bench.loaders import file_suite

        suite: Suite = file_suite(name)
        return suite
    return SUITES.get(name)


def _policy(config: BenchConfig, tasks: list[Task], system_prompt: str) -> Any:
    if config.model == EXPERT:
        from reasonloop.bench.experts import expert_policy

        return expert_policy(tasks, system_prompt=system_prompt)
    from reasonloop.policy.registry import load_policy

    return load_policy(config.model, tool_format=config.tool_format, api_base=config.api_base)


def _scorer(tasks: list[Task]) -> Any:
    by_id = {t.id: t for t in tasks}

    def score(traj: Trajectory) -> list[Reward]:
        task = by_id[traj.task_id]
        return [task.verify(traj.final_answer, traj).as_reward(f"verifier:{task.verifier}")]

    return score


def _shutdown_tools(toolset: Any) -> None:
    for name in toolset.names:
        shutdown = getattr(toolset[name].sessions, "shutdown", None)
        if callable(shutdown):
            shutdown()


async def _run_episodes(runtime: Any, jobs: list[tuple[Task, int, int | None]], concurrency: int, live: Any) -> int:
    limit = asyncio.Semaphore(concurrency)

    async def one(task: Task, sample: int, seed: int | None) -> None:
        async with limit:
            traj = await runtime.run(
                task.prompt, task_id=task.id, sample=sample, seed=seed,
                metadata={"suite": task.suite}, on_step=live.on_step,
            )  # fmt: skip
            live.on_episode(traj)

    await asyncio.gather(*(one(*job) for job in jobs))
    return len(jobs)


async def arun_bench(
    config: BenchConfig,
    *,
    out_dir: str | Path,
    concurrency: int = 8,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    live: bool | None = None,
    plots: bool = True,
) -> Report:
    """Run (or resume) a benchmark; see :func:`run_bench`."""
    from reasonloop.agents import AGENTS, AgentRuntime
    from reasonloop.agents.episode import sample_seed
    from reasonloop.bench.live import LiveTable
    from reasonloop.bench.output import write_outputs
    from reasonloop.policy.base import SamplingParams
    from reasonloop.trajectory.store import RunStore

    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    out = Path(out_dir)
    suite = resolve_suite(config.suite)
    tasks = suite.generate(config.n, seed=config.seed, difficulty=config.difficulty)
    system_prompt = config.system_prompt if config.system_prompt is not None else suite.system_prompt
    _check_out_dir(config, out, resume)
    toolset = suite.toolset(tasks, cache_dir=cache_dir or out / "cache")
    sampling = SamplingParams(temperature=config.temperature, max_tokens=config.max_tokens)
    agent = AGENTS.get(config.agent)(
        _policy(config, tasks, system_prompt), toolset, system_prompt=system_prompt, sampling=sampling,
        max_steps=config.max_steps,
    )  # fmt: skip
    started = time.perf_counter()
    # NORMAL sync survives the death of the process (SIGKILL, OOM); a power cut may lose the
    # last commits, which a resume simply reruns. FULL would add an fsync per episode.
    with RunStore(out / STORE_FILE, synchronous="NORMAL") as store:
        done = store.finished_keys(RUN_ID)
        jobs = [
            (task, s, seed)
            for task in tasks
            for s in range(config.samples)
            if (RUN_ID, task.id, s, seed := sample_seed(config.seed, s)) not in done
        ]
        total = len(tasks) * config.samples
        show = sys.stdout.isatty() if live is None else live
        table = LiveTable(title=f"{config.suite} / {config.model}", total=total, already_done=total - len(jobs), enabled=show)
        try:
            with table:
                async with AgentRuntime(agent, store=store, run_id=RUN_ID, scorer=_scorer(tasks)) as runtime:
                    ran = await _run_episodes(runtime, jobs, concurrency, table)
        finally:
            _shutdown_tools(toolset)
        trajectories = list(store.iter_trajectories(run_id=RUN_ID))
    wall = time.perf_counter() - started
    report = build_report(
        config=config.as_dict(), config_hash=config_hash(config), tasks=tasks, trajectories=trajectories,
        samples=config.samples, wall_s=wall, episodes_run=ran,
    )  # fmt: skip
    write_outputs(report, out, latencies=[t.metrics.get("wall_s", 0.0) for t in trajectories], plots=plots)
    return report


def run_bench(
    suite: str,
    n: int = 50,
    model: str = EXPERT,
    agent: str = "react",
    samples: int = 1,
    concurrency: int = 8,
    out_dir: str | Path = "bench-out",
    resume: bool = False,
    *,
    cache_dir: str | Path | None = None,
    live: bool | None = None,
    plots: bool = True,
    **options: Any,
) -> Report:
    """Run ``samples`` episodes of ``n`` tasks of ``suite`` and write the report into ``out_dir``.

    Args:
        suite: Suite name.
        n: Number of tasks.
        model: ``expert`` (the scripted expert), ``replay:FILE``, ``hf:PATH`` or a LiteLLM model.
        agent: Agent builder name.
        samples: Episodes per task.
        concurrency: Episodes run at once.
        out_dir: Where config, store, report, summary and plots go.
        resume: Continue the run in ``out_dir`` (same configuration only).
        cache_dir: Where suites build tool data (default ``out_dir/cache``).
        live: Show the live table (default: when stdout is a terminal).
        plots: Write PNG plots (needs matplotlib).
        **options: Other :class:`BenchConfig` fields (``seed``, ``difficulty``, ``max_steps``...).

    Returns:
        The :class:`~reasonloop.bench.report.Report` also written to ``out_dir/report.json``.

    Raises:
        ConfigError: Bad settings, a changed configuration on resume, or an existing
            run in ``out_dir`` without ``resume``.
    """
    config = BenchConfig(suite=suite, n=n, model=model, agent=agent, samples=samples, **options)
    return asyncio.run(
        arun_bench(config, out_dir=out_dir, concurrency=concurrency, resume=resume, cache_dir=cache_dir, live=live, plots=plots)
    )
