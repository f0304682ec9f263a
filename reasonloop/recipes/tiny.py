"""The embedded ``tiny`` policy: how it is made, from nothing, on a CPU.

    from reasonloop.recipes.tiny import run_tiny_recipe
    summary = run_tiny_recipe("runs/tiny", seed=0)     # or: reasonloop recipe tiny --out runs/tiny

One reproducible pipeline: generate tasks of every suite; record their experts through
the real agent and the real tools (calculator, sandboxed Python, Z3, BM25 search, Fast
Downward) with the new tokenizer's own ids; supervised fine-tuning on the policy tokens;
a short ARPO phase on the suites' verifiers; evaluation on held-out seeds with and
without tools. No training text is written by hand: every example is a generated task
and a tool's real output.

What a model this small can learn is copying and structured translation, so each
suite's expert (:data:`EXPERTS`) is written as exactly that, and it is *reactive*: it
reads the last tool result from its context, as the model must.

* arith / arith-py / arith-chain: translate the word problem into an expression, call
  the calculator (or ``print(...)`` in Python), copy the result.
* lookup: search the entity's name (copied letter by letter: the tokenizer spells
  capitalised words), then quote the fact's phrase from the retrieved documents and
  copy the answer from the quote (a second search with the first hop's answer for
  two-hop questions).
* logic: translate the clues into SMT-LIB for Z3, read the model.
* planning (LLM+P): write the problem in PDDL from the English description, call the
  planner, copy its plan. The model never plans; the planner does.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reasonloop.bench.suites import DEFAULT_SYSTEM_PROMPT, SUITES
from reasonloop.bench.task import ExpertTurn, Task
from reasonloop.errors import ConfigError
from reasonloop.policy.base import Context
from reasonloop.registry import Registry
from reasonloop.training.sft import TeacherPolicy
from reasonloop.trajectory.schema import Trajectory

__all__ = [
    "ASSET_DIR",
    "EVAL_DIFFICULTY",
    "EXPERTS",
    "HELD_OUT_SEED",
    "SYSTEM_PROMPT",
    "TEMPLATE",
    "TINY_SUITES",
    "TRAIN_LEVELS",
    "TRAIN_SCALE",
    "ReactiveTeacher",
    "BPE_WEIGHTS",
    "SUITE_WEIGHTS",
    "TinyRecipeConfig",
    "build_tokenizer",
    "evaluation_prompts",
    "expert_turn",
    "held_out_tasks",
    "in_description_order",
    "recipe_tasks",
    "record_experts",
    "recipe_variant",
    "run_tiny_recipe",
    "sft_train",
    "training_tasks",
]

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny"
"""Where the shipped model lives (``--model tiny``)."""
TEMPLATE = "tiny-tags"
"""The chat template the model is trained with (see :mod:`reasonloop.policy.templates`)."""
SYSTEM_PROMPT = DEFAULT_SYSTEM_PROMPT
"""The suites' system prompt: ``reasonloop bench --model tiny`` starts where training did."""
TINY_SUITES: tuple[str, ...] = ("arith", "arith-py", "arith-chain", "lookup", "logic", "planning")
"""The suites the model is trained and evaluated on."""
EVAL_DIFFICULTY: Mapping[str, int] = {
    "arith": 2, "arith-py": 2, "arith-chain": 1, "lookup": 1, "logic": 1, "planning": 1,
}
"""Difficulty of the held-out evaluation per suite (training mixes 1 and 2 where it exists)."""
HELD_OUT_SEED = 10_000
"""Generator seed of evaluation tasks; training seeds stay far below it."""

TurnFn = Callable[[Task, int, str | None], ExpertTurn | None]
"""``(task, turn number, last tool result or None) -> the expert's turn`` (``None``: no turn)."""
EXPERTS: Registry[TurnFn] = Registry("tiny expert")

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _last_number(text: str | None) -> str:
    found = _NUMBER.findall(text or "")
    return found[-1] if found else ""


def _answer(text: str) -> ExpertTurn:
    return ExpertTurn(text=f"<answer>{text}</answer>")


@EXPERTS.decorator("arith")
def _arith(task: Task, turn: int, last: str | None) -> ExpertTurn | None:
    if turn == 0:
        return ExpertTurn(tool_calls=[("calculator", {"expression": task.metadata["expression"]})])
    return _answer(_last_number(last)) if turn == 1 else None


@EXPERTS.decorator("arith-py")
def _arith_py(task: Task, turn: int, last: str | None) -> ExpertTurn | None:
    if turn == 0:
        return ExpertTurn(tool_calls=[("python", {"code": f"print({task.metadata['expression']})"})])
    return _answer(_last_number(last)) if turn == 1 else None


@EXPERTS.decorator("arith-chain")
def _arith_chain(task: Task, turn: int, last: str | None) -> ExpertTurn | None:
    exprs, values = task.metadata["expressions"], task.metadata["values"]
    if turn < len(exprs):
        expr = exprs[turn]
        if turn > 0:  # the step reads the previous result as the tool printed it
            expr = expr.replace(str(values[turn - 1]), _last_number(last), 1)
        return ExpertTurn(tool_calls=[("calculator", {"expression": expr})])
    return _answer(_last_number(last)) if turn == len(exprs) else None


_RELATIONS = ("works for", "in the town of", "born in", "founded in", "headquarters are in", "in the region of")
"""The phrases that introduce a fact in the lookup corpus's documents."""


def _quote(answer: str, last: str | None) -> str:
    """``"<relation> <answer>. "`` as the retrieved text has it, or ``""`` when it does not."""
    for relation in _RELATIONS:
        if f"{relation} {answer}" in (last or ""):
            return f"{relation} {answer}. "
    return ""


@EXPERTS.decorator("lookup")
def _lookup(task: Task, turn: int, last: str | None) -> ExpertTurn | None:
    searches = [t for t in task.expert if t.tool_calls]
    if turn < len(searches):
        return ExpertTurn(tool_calls=[(n, {"query": a["query"]}) for n, a in searches[turn].tool_calls])
    return _answer(task.answer) if turn == len(searches) else None


def _lookup_quoted(task: Task, turn: int, last: str | None) -> ExpertTurn | None:
    """Search each hop's entity, then quote the fact's phrase from the result and answer.

    The quote turns reading into copying: the relation the question asks for (``works
    for``) is written first, then the retrieved text's continuation of that same phrase
    is copied, and the answer is copied from the quote just written.
    """
    searches = [t for t in task.expert if t.tool_calls]
    if turn < len(searches):
        return _lookup(task, turn, last)
    return ExpertTurn(text=f"{_quote(task.answer, last)}<answer>{task.answer}</answer>") if turn == len(searches) else None


@EXPERTS.decorator("logic")
def _logic(task: Task, turn: int, last: str | None) -> ExpertTurn | None:
    if turn == 0:
        return ExpertTurn(tool_calls=[("z3", {"smtlib": task.metadata["smtlib"]})])
    return _answer(task.answer) if turn == 1 else None


_ACTION = re.compile(r"\([a-z][\w-]*(?: [\w-]+)*\)")
_PROBLEM_NAME = re.compile(r"\(define \(problem [^)\s]+\)")


_SECTION = re.compile(r"(\(:init\n    |\(:goal \(and\n    )((?:\([^()]*\) ?)*)")


def in_description_order(problem: str) -> str:
    """``problem`` with its init and goal atoms in the order the task's English states them.

    The description phrases each atom as one sentence, atoms sorted
    (:func:`reasonloop.planners.render.render_state`); written in that order, the PDDL is
    a sentence-by-sentence translation, which a small model learns far more easily than a
    reordering. Same atoms, same problem.
    """
    def ordered(match: re.Match[str]) -> str:
        atoms = re.findall(r"\([^()]*\)", match.group(2))
        return match.group(1) + " ".join(sorted(atoms))

    return _SECTION.sub(ordered, problem)


@EXPERTS.decorator("planning")
def _planning(task: Task, turn: int, last: str | None) -> ExpertTurn | None:
    if turn == 0:  # the domain is given (named, not copied); the problem is the translation
        args = next(a for t in task.expert for n, a in t.tool_calls if "problem" in a)
        problem = in_description_order(_PROBLEM_NAME.sub("(define (problem task)", args["problem"], count=1))
        return ExpertTurn(tool_calls=[("plan", {"domain": task.metadata["domain_name"], "problem": problem})])
    if turn == 1:
        plan = "\n".join(_ACTION.findall((last or "").lower()))
        return _answer(f"\n{plan}\n")
    return None


def expert_turn(task: Task, turn: int, last: str | None, *, quote_lookup: bool = False) -> ExpertTurn | None:
    """The turn the suite's tiny expert writes next (see :data:`EXPERTS`; ``quote_lookup``:
    the lookup expert quotes the fact's phrase before it answers)."""
    if quote_lookup and task.suite == "lookup":
        return _lookup_quoted(task, turn, last)
    return EXPERTS.get(task.suite)(task, turn, last)


class ReactiveTeacher(TeacherPolicy):
    """A policy writing each task's tiny-expert turns, tokenised by a local policy (ids exact).

    Like :class:`~reasonloop.training.sft.TeacherPolicy`, except that the turn is not
    scripted ahead: the tiny expert reads the last ``tool`` message before it writes
    (see :data:`EXPERTS`).
    """

    def __init__(self, base: Any, tasks: Sequence[Task], *, quote_lookup: bool = False) -> None:
        super().__init__(base, tasks)
        self._tasks = {t.prompt: t for t in tasks}
        self.quote_lookup = quote_lookup

    def turn_for(self, context: Context) -> ExpertTurn | None:
        users = [m for m in context.messages if m.get("role") == "user"]
        task = self._tasks.get(str(users[0].get("content", ""))) if users else None
        if task is None:
            return None
        results = [str(m.get("content", "")) for m in context.messages if m.get("role") == "tool"]
        turn_no = sum(1 for m in context.messages if m.get("role") == "assistant")
        return expert_turn(task, turn_no, results[-1] if results else None, quote_lookup=self.quote_lookup)


@dataclass(frozen=True, kw_only=True)
class TinyRecipeConfig:
    """Sizes and budgets of :func:`run_tiny_recipe` (defaults: the shipped model)."""

    seed: int = 0
    """Seeds the task generators (training seeds ``seed * 100 + d``), the weights and the data order."""
    suites: tuple[str, ...] = TINY_SUITES
    """Suites trained on."""
    n_train: int = 3000
    """Generated training tasks per suite and difficulty, scaled per suite by ``train_scale``.
    Every task is distinct, so the model sees each about once: it must learn to copy and
    translate, it cannot memorise."""
    vocab_size: int = 2048
    """BPE vocabulary (digits stay single tokens, so numbers are copied digit by digit)."""
    letter_names: bool = True
    """Encode capitalised words letter by letter, like digits, so a made-up name is copied
    the way a number is (see :func:`~reasonloop.policy.tiny_model.build_tiny_tokenizer`;
    needs ``arch="llama"``). With BPE pieces for names the model never learnt to copy a
    new name (lookup 0%, see :func:`recipe_variant`)."""
    arch: str = "llama"
    """Model architecture, ``qwen2`` or ``llama`` (transformers loads a Llama checkpoint's
    own ``tokenizer.json`` as it is, but rebuilds a Qwen2 one's split rules, which would
    drop ``letter_names``)."""
    quote_lookup: bool = True
    """The lookup expert quotes the retrieved fact's phrase (``works for Gyrurcor.``) before
    it answers, so reading the answer becomes copying a phrase it has just started."""
    train_scale: Mapping[str, float] = field(default_factory=lambda: dict(TRAIN_SCALE))
    """Training tasks per suite relative to ``n_train`` (1.0 when absent)."""
    suite_weights: Mapping[str, float] = field(default_factory=lambda: dict(SUITE_WEIGHTS))
    """Relative SFT sampling weight per suite (1.0 when absent)."""
    hidden: int = 192
    """Hidden size of the model."""
    layers: int = 4
    """Decoder layers."""
    heads: int = 6
    """Attention heads."""
    kv_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    sft_steps: int = 12_000
    """SFT optimiser steps (each on one suite's batch)."""
    sft_batch: int = 12
    """Trajectories per SFT step."""
    sft_lr: float = 2e-3
    """Peak SFT learning rate (linear warm-up, cosine decay)."""
    sft_bf16: bool = True
    """Run the SFT forward passes under bfloat16 autocast (weights and optimiser stay
    float32): about twice the steps per second on a CPU with bf16 instructions
    (AVX512-BF16, AMX), slower on one without."""
    sft_budget_s: float = math.inf
    """Wall-clock cap of the SFT phase (the schedule is cut, not stretched); the default,
    no cap, makes the result independent of the machine's speed."""
    arpo_steps: int = 10
    """ARPO steps after SFT (0: none)."""
    eval_n: int = 20
    """Held-out tasks per suite in the final evaluation."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.suites if s not in EXPERTS]
        if unknown:
            raise ConfigError(f"no tiny expert for suites {unknown}; known: {EXPERTS.names()}")
        if min(self.n_train, self.vocab_size, self.hidden, self.layers, self.heads, self.sft_batch) < 1:
            raise ConfigError("sizes must be >= 1")
        if self.sft_steps < 0 or self.arpo_steps < 0 or self.eval_n < 0 or self.sft_lr <= 0:
            raise ConfigError("steps and eval_n must be >= 0, sft_lr > 0")


TRAIN_SCALE: Mapping[str, float] = {"arith-py": 0.5, "planning": 0.25}
"""Training tasks per suite relative to ``n_train`` (1.0 when absent): recording a Python or
planner episode costs the most, and a long episode teaches more tokens per task."""
TRAIN_LEVELS: Mapping[str, tuple[int, ...]] = {"lookup": (1,), "logic": (1,)}
"""Difficulties trained on per suite (``(1, 2)`` when absent). Lookup and logic train at
their evaluation difficulty only: a longer episode costs CPU time the small model needs
elsewhere (easy planning has too few distinct instances to train on alone)."""


def training_tasks(suite: str, n: int, seed: int) -> list[Task]:
    """``n`` tasks per difficulty (:data:`TRAIN_LEVELS`, where the suite has it) from training seeds."""
    spec = SUITES.get(suite)
    out: list[Task] = []
    for level in TRAIN_LEVELS.get(suite, (1, 2)):
        if level in spec.difficulties:
            out.extend(spec.generate(n, seed=seed * 100 + level, difficulty=level))
    return out


def recipe_tasks(suites: Sequence[str], n_train: int, seed: int, *, exclude: Iterable[str] = (),
                 scale: Mapping[str, float] = TRAIN_SCALE) -> list[Task]:
    """The recipe's training tasks: :func:`training_tasks` per suite, sized by ``scale``.

    Duplicate prompts are dropped, and so is every prompt in ``exclude`` (the evaluation
    tasks: a small instance space such as easy planning repeats across seeds).
    """
    seen = set(exclude)
    out: list[Task] = []
    for suite in suites:
        for task in training_tasks(suite, max(1, round(n_train * scale.get(suite, 1.0))), seed):
            if task.prompt not in seen:
                seen.add(task.prompt)
                out.append(task)
    return out


def evaluation_prompts(suites: Sequence[str], seed: int = 0, n: int = 100) -> set[str]:
    """Prompts of the held-out tasks the recipe, the demo and the README evaluate on."""
    seeds = {HELD_OUT_SEED, HELD_OUT_SEED + seed}
    return {t.prompt for s in seeds for tasks in held_out_tasks(suites, n, seed=s).values() for t in tasks}


def build_tokenizer(tasks: Sequence[Task], *, vocab_size: int, letter_names: bool = False) -> Any:
    """A byte-level BPE trained on the tasks' prompts and their experts' tool calls."""
    from reasonloop.policy.templates import TINY_TAGS
    from reasonloop.policy.tiny_model import build_tiny_tokenizer

    texts: list[str] = [SYSTEM_PROMPT]
    for task in tasks:
        texts.append(task.prompt)
        for turn in task.expert:
            texts.extend([turn.text, *(json.dumps(a, ensure_ascii=False) for _, a in turn.tool_calls)])
    return build_tiny_tokenizer(texts, vocab_size=vocab_size, chat_template=TINY_TAGS.source,
                                letter_names=letter_names)


async def _record_suite(policy: Any, suite: str, tasks: Sequence[Task], cache_dir: Path,
                        quote_lookup: bool) -> list[Trajectory]:
    from reasonloop.agents import AgentRuntime, build_react_agent

    toolset = SUITES.get(suite).toolset(tasks, cache_dir=cache_dir)
    agent = build_react_agent(ReactiveTeacher(policy, tasks, quote_lookup=quote_lookup), toolset, system_prompt=SYSTEM_PROMPT, max_steps=6)
    async with AgentRuntime(agent, concurrency=4) as runtime:
        return await runtime.run_many([{"task_id": t.id, "prompt": t.prompt} for t in tasks])


def record_experts(policy: Any, tasks: Sequence[Task], *, cache_dir: Path,
                   quote_lookup: bool = False) -> list[Trajectory]:
    """The tasks' tiny experts run through the real agent and tools, with ``policy``'s ids.

    Only episodes the suite's verifier accepts are kept (a tool failure never becomes
    training data); each kept trajectory carries its suite in ``metadata``.
    """
    by_suite: dict[str, list[Task]] = {}
    for task in tasks:
        by_suite.setdefault(task.suite, []).append(task)
    kept: list[Trajectory] = []
    for suite, group in by_suite.items():
        index = {t.id: t for t in group}
        for traj in asyncio.run(_record_suite(policy, suite, group, cache_dir, quote_lookup)):
            if index[traj.task_id].verify(traj.final_answer, traj).correct and traj.prompt_token_ids:
                traj.metadata["suite"] = suite
                kept.append(traj)
    return kept


_BATCH_TOKENS = 4096
SUITE_WEIGHTS: Mapping[str, float] = {
    "arith-py": 0.6, "lookup": 1.5, "logic": 1.2,
}
"""The shipped model's SFT sampling weights per suite (1.0 when absent): the arithmetic
suites share their word problems, so they share what is learnt; lookup and logic, the
suites that copy names, get the most steps."""


BPE_WEIGHTS: Mapping[str, float] = {
    "arith-py": 0.6, "arith-chain": 0.8, "lookup": 0.5, "logic": 0.8, "planning": 0.6,
}
"""The ``bpe`` variant's weights (the model shipped before names were spelt letter by letter)."""


def recipe_variant(name: str, seed: int = 0) -> TinyRecipeConfig:
    """A named recipe: ``shipped`` (the defaults: the model in ``assets/tiny``) or ``bpe``.

    ``bpe`` is the recipe of the model shipped before: names in BPE pieces, a Qwen2
    model, a lookup expert that answers without quoting, 5,000 float32 SFT steps on
    ~14,500 tasks (68 minutes on 2 cores). Held out (20 tasks per suite, seed 10000) it
    solved the arithmetic suites (100%) but no lookup (0%) and 10% of logic, where the
    shipped recipe reaches lookup 90% and logic 35%: a small model copies a name spelt in
    common letters, not one made of rare BPE pieces.
    """
    if name == "shipped":
        return TinyRecipeConfig(seed=seed)
    if name == "bpe":
        return TinyRecipeConfig(seed=seed, letter_names=False, arch="qwen2", quote_lookup=False,
                                suite_weights=dict(BPE_WEIGHTS), n_train=2000, sft_steps=5000, sft_bf16=False)
    raise ConfigError(f"unknown tiny recipe variant {name!r}; known: bpe, shipped")


def _lr_at(progress: float, peak: float, warm: float = 0.05) -> float:
    """Linear warm-up over the first ``warm`` of training, then cosine decay to 0."""
    if progress < warm:
        return peak * max(progress, 0.005) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warm) / (1 - warm))))


def sft_train(model: Any, trajectories: Sequence[Trajectory], *, steps: int, batch: int, lr: float, seed: int,
              pad_id: int, budget_s: float = math.inf, suite_weights: Mapping[str, float] | None = None,
              bf16: bool = False, log: Callable[[dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """SFT on the policy tokens, each step on one suite's batch (similar lengths pad little).

    Uses :func:`reasonloop.training.sft.sft_loss` (``bf16``: under bfloat16 autocast);
    adds the warm-up/cosine schedule and the wall-clock budget the recipe needs.
    """
    import torch

    from reasonloop.training.sft import sft_loss, sft_rows

    rng = random.Random(seed)
    pools: dict[str, list[tuple[list[int], list[int]]]] = {}
    for traj in trajectories:
        pools.setdefault(str(traj.metadata.get("suite", "")), []).extend(sft_rows([traj]))
    names = sorted(pools)
    # A batch holds at most ``_BATCH_TOKENS`` tokens and the long suites are drawn less
    # often (``weights``), so the CPU time goes mostly where a small model learns.
    sizes = {n: max(1, min(batch, _BATCH_TOKENS // max(len(i) for i, _ in pools[n]))) for n in names}
    weights = [(SUITE_WEIGHTS if suite_weights is None else suite_weights).get(n, 1.0) for n in names]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    model.train()
    try:
        for step in range(steps):
            if time.perf_counter() - started > budget_s:
                break
            suite = rng.choices(names, weights)[0]
            rows = rng.sample(pools[suite], min(sizes[suite], len(pools[suite])))
            # Progress is the larger of steps and time used, so a run cut by the
            # budget (a busy machine) still ends its schedule with a full decay.
            progress = max(step / steps, (time.perf_counter() - started) / budget_s)
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(progress, lr)
            loss, metrics = sft_loss(model, rows, pad_id, bf16=bf16)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            entry = {"step": float(step + 1), **metrics, "seconds": time.perf_counter() - started}
            history.append(entry)
            if log is not None:
                log({**entry, "suite": suite})  # type: ignore[dict-item]
    finally:
        model.eval()
    return history


def held_out_tasks(suites: Sequence[str], n: int, *, seed: int = HELD_OUT_SEED) -> dict[str, list[Task]]:
    """``n`` evaluation tasks per suite from held-out seeds, at :data:`EVAL_DIFFICULTY`."""
    return {s: SUITES.get(s).generate(n, seed=seed, difficulty=EVAL_DIFFICULTY.get(s)) for s in suites}


def run_tiny_recipe(out_dir: str | Path, *, seed: int = 0, config: TinyRecipeConfig | None = None,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the tiny policy from nothing into ``out_dir/model``; returns the summary.

    Steps: generate training tasks, train the tokenizer, build a random model,
    record the tiny experts through the real tools, SFT, optional ARPO, evaluate on
    held-out seeds with and without tools. ``out_dir/summary.json`` holds the numbers,
    the settings and the time of each phase.
    """
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.policy.tiny_model import build_tiny_model, save_tiny
    from reasonloop.recipes.tiny_loop import arpo_finetune, evaluate_suites

    cfg = config or TinyRecipeConfig(seed=seed)
    if cfg.letter_names and cfg.arch != "llama":
        raise ConfigError("letter_names needs arch='llama' (a Qwen2 checkpoint's tokenizer is rebuilt on load)")
    out, times = Path(out_dir), {}
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    clock = time.perf_counter()
    tasks = recipe_tasks(cfg.suites, cfg.n_train, cfg.seed, exclude=evaluation_prompts(cfg.suites, cfg.seed),
                         scale=cfg.train_scale)
    tokenizer = build_tokenizer(tasks, vocab_size=cfg.vocab_size, letter_names=cfg.letter_names)
    model = build_tiny_model(tokenizer, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, kv_heads=cfg.kv_heads,
                             arch=cfg.arch, seed=cfg.seed)
    policy = HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu", template=TEMPLATE))
    experts = record_experts(policy, tasks, cache_dir=cache, quote_lookup=cfg.quote_lookup)
    times["record_s"] = time.perf_counter() - clock
    log(f"recorded {len(experts)} expert trajectories of {len(tasks)} tasks in {times['record_s']:.0f}s")
    clock = time.perf_counter()
    sft = sft_train(model, experts, steps=cfg.sft_steps, batch=cfg.sft_batch, lr=cfg.sft_lr, seed=cfg.seed,
                    pad_id=int(tokenizer.pad_token_id), budget_s=cfg.sft_budget_s, suite_weights=cfg.suite_weights,
                    bf16=cfg.sft_bf16, log=lambda e: log(f"sft step {e['step']:.0f} loss {e['sft_loss']:.3f}") if e["step"] % 50 == 0 else None)
    times["sft_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    held = held_out_tasks(cfg.suites, cfg.eval_n, seed=HELD_OUT_SEED + cfg.seed)
    arpo = []
    if cfg.arpo_steps:
        arpo_tasks = {s: SUITES.get(s).generate(32, seed=cfg.seed * 100 + 50, difficulty=EVAL_DIFFICULTY.get(s))
                      for s in cfg.suites}
        arpo = arpo_finetune(model, tokenizer, arpo_tasks, steps=cfg.arpo_steps, cache_dir=cache, seed=cfg.seed,
                             log=lambda e: log(f"arpo step {e['step']} reward {e['reward_mean']:.2f}"))
    times["arpo_s"] = time.perf_counter() - clock
    path = save_tiny(model, tokenizer, out / "model")
    clock = time.perf_counter()
    trained = HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu", template=TEMPLATE))
    with_tools, _ = evaluate_suites(trained, held, tools=True, cache_dir=cache)
    without, _ = evaluate_suites(trained, held, tools=False, cache_dir=cache)
    times["eval_s"] = time.perf_counter() - clock
    summary = {
        "model": str(path), "config": asdict(cfg), "expert_trajectories": len(experts),
        "sft_steps_done": len(sft), "sft_final_loss": sft[-1]["sft_loss"] if sft else None,
        "arpo": arpo, "accuracy_with_tools": with_tools, "accuracy_without_tools": without,
        "eval_tasks_per_suite": cfg.eval_n, "eval_seed": HELD_OUT_SEED + cfg.seed, "seconds": times,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    log("accuracy with tools: " + ", ".join(f"{k} {v:.0%}" for k, v in with_tools.items()))
    log("accuracy without tools: " + ", ".join(f"{k} {v:.0%}" for k, v in without.items()))
    return summary
