"""The training loop: rollout -> reward -> advantage -> loss -> step -> sync -> log.

    trainer = Trainer(load_config("train.yaml"))
    trainer.train()                                   # checkpoints under out_dir/checkpoints
    Trainer.resume("runs/train").train()              # continues from the last complete one

The rollout engine is an :class:`~reasonloop.training.engine.HFEngine` over the very
model object being trained, so "syncing weights" means dropping its stale prefix
caches. Everything a step samples is derived from ``(seed, step, prompt slot)``, and
a checkpoint holds model, optimiser, scheduler, RNG states and the data position, so
a resumed run continues exactly as an uninterrupted one (bit-identical on CPU with
``deterministic: true``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reasonloop.agents import AgentRuntime
from reasonloop.bench.task import Task
from reasonloop.errors import ConfigError
from reasonloop.training.advantages import EMPGSettings
from reasonloop.training.batch import Row, check_rows, group_advantages, group_rows
from reasonloop.training.checkpoint import (
    capture_rng,
    latest_checkpoint,
    load_checkpoint,
    load_frozen,
    restore_rng,
    save_checkpoint,
    save_frozen,
)
from reasonloop.training.config import TrainConfig, config_hash, load_config
from reasonloop.training.distributed import DataParallel
from reasonloop.training.losses import PolicyLossConfig
from reasonloop.training.metrics import MetricsLogger
from reasonloop.training.rewards import RewardStack
from reasonloop.training.rollout import Group, rollout_group
from reasonloop.training.setup import (
    apply_lora,
    build_agent,
    build_engine,
    build_model,
    build_tasks,
    rollout_config,
    warm_start,
)
from reasonloop.training.update import UpdateSettings, policy_update

__all__ = ["Trainer", "episode_seed", "prompt_indices"]

AEPO_ENTROPY_SCALE = 0.2


def prompt_indices(step: int, n_tasks: int, per_step: int, seed: int) -> list[int]:
    """Task indices of ``step`` (1-based): consecutive slices of per-epoch seeded permutations."""
    out = []
    for slot in range(per_step):
        position = (step - 1) * per_step + slot
        epoch, offset = divmod(position, n_tasks)
        order = list(range(n_tasks))
        random.Random(f"data/{seed}/{epoch}").shuffle(order)
        out.append(order[offset])
    return out


@contextlib.contextmanager
def _determinism(on: bool) -> Iterator[None]:
    """Deterministic kernels and one CPU thread while training (restored afterwards)."""
    import torch

    if not on:
        yield
        return
    enabled, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled)
        torch.set_num_threads(threads)


def episode_seed(seed: int, step: int, slot: int) -> int:
    """Base sampling seed of a step's prompt slot (samples add their index)."""
    return ((seed * 1_000_003 + step) * 8191 + slot) * 256 % (2**31 - 256)


class Trainer:
    """Owns the model, optimiser, engine and run directory of one training run."""

    def __init__(self, config: TrainConfig, *, model: Any = None, tokenizer: Any = None) -> None:
        """Args:
        config: The run's configuration.
        model: A transformers model to train instead of building one from ``config.model``.
        tokenizer: Its tokenizer (required with ``model``).
        """
        import torch

        self.config = config
        self.out_dir = Path(config.out_dir)
        if model is None:
            tokenizer, model = build_model(config.model)
        elif tokenizer is None:
            raise ConfigError("a model passed to Trainer needs its tokenizer")
        if config.optim.lora is not None:
            model = apply_lora(model, config.optim.lora, seed=config.seed)
        self.tokenizer = tokenizer
        self.engine = build_engine(model, tokenizer, config.model, kind=config.rollout.engine, train=config)
        self.model = self.engine.module
        self.tasks, self.tools = build_tasks(config.task)
        self.agent = build_agent(self.engine, self.tools, config.rollout)
        self.rollout_config = rollout_config(config.rollout)
        self.reward = RewardStack(correctness=tuple(config.reward.correctness), gate_on_format=config.reward.gate_on_format,
                                  multi_tool_bonus=config.reward.multi_tool_bonus)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        self.ref_model = copy.deepcopy(self.model).eval() if config.algo.kl_coef > 0 else None
        self.settings = UpdateSettings(
            loss=PolicyLossConfig(clip_low=config.algo.clip_low, clip_high=config.algo.clip_high,
                                  dual_clip=config.algo.dual_clip, kl_coef=config.algo.kl_coef,
                                  entropy_coef=config.algo.entropy_coef),
            kind=config.algo.loss, micro_batch_size=config.optim.micro_batch_size,
            max_grad_norm=config.optim.max_grad_norm, ppo_epochs=config.algo.ppo_epochs,
            old_logprobs=config.algo.old_logprobs, bf16=config.optim.bf16,
        )
        self.step = 0
        self.warmed = config.sft.steps == 0
        self.last_groups: list[Group] = []
        self.last_rows: list[Row] = []
        self.hash = config_hash(config)
        self.dp = DataParallel.from_env()

    # -- paths ---------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    # -- resume --------------------------------------------------------------------------

    @classmethod
    def resume(cls, run_dir: str | Path, config: TrainConfig | None = None, **overrides: Any) -> Trainer:
        """Continue the run in ``run_dir`` from its latest complete checkpoint.

        Args:
            run_dir: The run's ``out_dir``.
            config: The config to continue with (default: the one saved in the run);
                it must hash like the checkpoint's (steps and logging may differ).
            **overrides: Top-level config keys to replace (e.g. a larger ``optim``).

        Raises:
            ConfigError: no complete checkpoint, or a different config.
        """
        root = Path(run_dir)
        if config is None:
            saved = root / "config.json"
            if not saved.is_file():
                raise ConfigError(f"{root} has no config.json: not a training run directory")
            config = load_config(json.loads(saved.read_text(encoding="utf-8")), out_dir=str(root), **overrides)
        ckpt = latest_checkpoint(root / "checkpoints")
        if ckpt is None:
            raise ConfigError(f"{root} has no complete checkpoint to resume from")
        tensors, state = load_checkpoint(ckpt)
        if state.get("config_hash") != config_hash(config):
            raise ConfigError(
                f"checkpoint {ckpt} was written under config {state.get('config_hash')}, "
                f"this config hashes to {config_hash(config)}: refusing to resume a different run"
            )
        trainer = cls(config)
        trainer.load_state(tensors, state)
        return trainer

    def load_state(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        model_state = tensors["model"]
        if "frozen" in state:
            model_state = {**load_frozen(self.checkpoint_dir, str(state["frozen"])), **model_state}
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(tensors["optimizer"])
        self.scheduler.load_state_dict(tensors["scheduler"])
        if self.ref_model is not None and "ref_model" in tensors:
            self.ref_model.load_state_dict(tensors["ref_model"])
        restore_rng({**state["rng"], **tensors["rng"]})
        self.step = int(state["step"])
        self.warmed = True
        self.engine.sync_weights()

    def save(self) -> Path | None:
        """Write a checkpoint of the current step (atomic; rank 0 writes, the others wait)."""
        if not self.dp.is_main:
            self.dp.barrier()
            return None
        rng = capture_rng()
        model_state = self.model.state_dict()
        # Frozen: every entry that is neither trainable nor a buffer (tied weights such as
        # lm_head are state-dict entries without a parameter name of their own).
        trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        buffers = {n for n, _ in self.model.named_buffers()}
        has_frozen = any(not p.requires_grad for p in self.model.parameters())
        frozen = set(model_state) - trainable - buffers if has_frozen else set()
        extra: dict[str, Any] = {}
        if frozen:  # LoRA: the base is written once per run, each checkpoint holds the adapters
            extra["frozen"] = save_frozen(self.checkpoint_dir, {k: model_state[k] for k in sorted(frozen)})
            model_state = {k: v for k, v in model_state.items() if k not in frozen}
        tensors: dict[str, Any] = {
            "model": model_state, "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": {k: v for k, v in rng.items() if k in ("torch", "cuda")},
        }
        if self.ref_model is not None:
            tensors["ref_model"] = self.ref_model.state_dict()
        state = {"config_hash": self.hash, "data_position": self.step * self.config.optim.prompts_per_step,
                 "rng": {k: v for k, v in rng.items() if k in ("python", "numpy")}, **extra}
        path = save_checkpoint(self.checkpoint_dir, self.step, tensors, state, keep=self.config.keep_checkpoints)
        self.dp.barrier()
        return path

    # -- one step -----------------------------------------------------------------------

    def _batch_tasks(self, step: int) -> list[Task]:
        idx = prompt_indices(step, len(self.tasks), self.config.optim.prompts_per_step, self.config.seed)
        return [self.tasks[i] for i in idx]

    async def _rollout(self, step: int, slots: list[tuple[int, Task]]) -> list[Group]:
        # GRPO episodes run start to end and are never forked: no graph checkpoints to write.
        checkpoints = None if self.config.rollout.mode == "arpo" else False
        async with AgentRuntime(self.agent, run_id=f"step-{step}", checkpointer=checkpoints) as runtime:
            return list(await asyncio.gather(*(
                rollout_group(runtime, task.prompt, task_id=task.id, seed=episode_seed(self.config.seed, step, slot),
                              config=self.rollout_config, metadata={"step": step})
                for slot, task in slots
            )))

    def rollout(self, step: int) -> tuple[list[Task], list[Group]]:
        """Sample and score this rank's groups of ``step`` (rewards attached to the trajectories)."""
        slots = self.dp.shard(self._batch_tasks(step))
        tasks = [task for _, task in slots]
        groups = asyncio.run(self._rollout(step, slots)) if slots else []
        for task, group in zip(tasks, groups, strict=True):
            for traj in group.trajectories:
                traj.rewards = self.reward.score(traj, task)
        if self.config.logging.store_trajectories:
            self._store_trajectories([t for g in groups for t in g.trajectories])
        return tasks, groups

    def _store_trajectories(self, trajs: list[Any]) -> None:
        from reasonloop.trajectory.store import RunStore

        name = "trajectories.db" if self.dp.is_main else f"ranks/trajectories-{self.dp.rank}.db"
        store = RunStore(self.out_dir / name)
        try:
            store.put_many(trajs)
        finally:
            store.close()

    def train_step(self, step: int) -> dict[str, float]:
        """One full step; returns its metrics."""
        started = time.perf_counter()
        self.engine.stats.reset()
        _, groups = self.rollout(step)
        rollout_s = time.perf_counter() - started
        rows: list[Row] = []
        skipped = 0
        scale = AEPO_ENTROPY_SCALE if self.config.algo.entropy_scaled_advantage else 0.0
        section = self.config.algo.empg
        empg = EMPGSettings(k=section.k, k_future=section.k_future, zeta=section.zeta) if section else None
        for group in groups:
            per_step, _ = group_advantages(group, self.config.algo.advantage, entropy_scale=scale, empg=empg)
            made, bad = group_rows(group, per_step)
            rows.extend(made)
            skipped += len(bad)
        trajs = [t for g in groups for t in g.trajectories]
        problems = check_rows(trajs, rows)
        if problems:  # never train on tokens that were not sampled
            raise RuntimeError("training rows differ from the sampled tokens: " + "; ".join(problems[:3]))
        update = policy_update(self.model, self.optimizer, rows, self.settings,
                               pad_id=int(self.tokenizer.pad_token_id), ref_model=self.ref_model, dp=self.dp)
        self.scheduler.step()
        self.engine.sync_weights()
        self.last_groups, self.last_rows = groups, rows
        elapsed = time.perf_counter() - started
        rollout_metrics = self.dp.all_mean(self._rollout_metrics(groups))
        return {**rollout_metrics, **update, "skipped_trajectories": float(skipped),
                "rollout_s": rollout_s, "step_s": elapsed, **self.engine.stats.as_dict(),
                "tokens_per_s": sum(len(r.input_ids) for r in rows) / elapsed if elapsed > 0 else 0.0,
                "lr": float(self.scheduler.get_last_lr()[0])}

    def _rollout_metrics(self, groups: list[Group]) -> dict[str, float]:
        trajs = [t for g in groups for t in g.trajectories]
        n = max(1, len(trajs))

        def mean(key: str) -> float:
            return sum(g.metrics[key] for g in groups) / max(1, len(groups))

        return {
            "reward_mean": sum(t.reward for t in trajs) / n,
            "accuracy": sum(self.reward.is_correct(t.rewards) for t in trajs) / n,
            "format_ok": sum(all(r.value >= 0 for r in t.rewards if r.name == "format") for t in trajs) / n,
            "tool_calls_per_traj": sum(len(t.tool_steps()) for t in trajs) / n,
            "branches_per_prompt": mean("branches"),
            "entropy_init": mean("entropy_init"),
            "entropy_after_tool": mean("entropy_after_tool"),
            "sampled_tokens": sum(g.metrics["sampled_tokens"] for g in groups),
            "trajectories": float(len(trajs)),
        }

    # -- the loop ----------------------------------------------------------------------

    def _save_config(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.json").write_text(self.config.model_dump_json(indent=2), encoding="utf-8")

    def train(self, steps: int | None = None) -> list[dict[str, float]]:
        """Train up to ``steps`` (default ``config.optim.steps``); returns this call's step metrics."""
        last = self.config.optim.steps if steps is None else steps
        log = self.config.logging
        main = self.dp.is_main
        if main:
            self._save_config()
            logger = MetricsLogger(self.metrics_path, progress=log.progress, total=last, wandb=log.wandb,
                                   tensorboard_dir=self.out_dir / "tb" if log.tensorboard else None,
                                   run_config=self.config.model_dump(mode="json"))
        else:  # the other ranks keep their own record, next to the run's
            logger = MetricsLogger(self.out_dir / "ranks" / f"metrics-{self.dp.rank}.jsonl")
        logger.truncate_after(self.step)
        history: list[dict[str, float]] = []
        with _determinism(self.config.deterministic):
            try:
                self._loop(last, logger, history)
            finally:
                logger.close()
        if log.plots and main:
            from reasonloop.training.plots import plot_metrics

            plot_metrics(self.metrics_path, self.out_dir / "curves.png")
        return history

    def _loop(self, last: int, logger: MetricsLogger, history: list[dict[str, float]]) -> None:
        every = self.config.checkpoint_every
        if not self.warmed:
            sft = warm_start(self.engine, build_tasks(self.config.task.model_copy(
                update={"n": self.config.sft.n_tasks, "seed": self.config.sft.seed}))[0],
                self.tools, self.config.rollout, self.config.sft)
            self.warmed = True
            logger.log(0, sft)
            if every:
                self.save()
        while self.step < last:
            metrics = self.train_step(self.step + 1)
            self.step += 1
            logger.log(self.step, metrics)
            history.append(metrics)
            if (every and self.step % every == 0) or self.step == last:
                self.save()
