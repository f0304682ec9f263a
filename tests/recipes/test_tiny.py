"""The tiny recipe: reactive experts, recording through real tools, SFT, the shipped model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reasonloop.bench.suites import SUITES
from reasonloop.errors import ConfigError
from reasonloop.recipes.tiny import (
    ASSET_DIR,
    EXPERTS,
    TEMPLATE,
    TINY_SUITES,
    TinyRecipeConfig,
    build_tokenizer,
    expert_turn,
    held_out_tasks,
    recipe_variant,
    record_experts,
    run_tiny_recipe,
    sft_train,
    training_tasks,
)


def _policy(tasks):  # a random-init model with the recipe's tokenizer and template
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.policy.tiny_model import build_tiny_model

    tok = build_tokenizer(tasks, vocab_size=600)
    model = build_tiny_model(tok, hidden=32, layers=2, heads=2, seed=0)
    return HFPolicy(model, tok, HFPolicyConfig(device="cpu", template=TEMPLATE))


def test_every_suite_has_an_expert_and_bad_configs_fail() -> None:
    assert set(TINY_SUITES) <= set(EXPERTS.names())
    with pytest.raises(ConfigError, match="no tiny expert"):
        TinyRecipeConfig(suites=("nope",))
    with pytest.raises(ConfigError):
        TinyRecipeConfig(sft_steps=-1)


def test_experts_read_the_last_tool_result() -> None:
    arith = SUITES.get("arith").generate(1, seed=3)[0]
    first = expert_turn(arith, 0, None)
    assert first is not None and first.tool_calls == [("calculator", {"expression": arith.metadata["expression"]})]
    # the answer is copied from what the tool printed, not from the reference
    assert expert_turn(arith, 1, "12345").text == "<answer>12345</answer>"  # type: ignore[union-attr]
    assert expert_turn(arith, 2, "12345") is None
    chain = SUITES.get("arith-chain").generate(1, seed=3, difficulty=2)[0]
    values = chain.metadata["values"]
    second = expert_turn(chain, 1, str(values[0]))
    assert second is not None and second.tool_calls[0][1]["expression"] == chain.metadata["expressions"][1]
    plan = SUITES.get("planning").generate(1, seed=3, difficulty=1)[0]
    call = expert_turn(plan, 0, None)
    assert call is not None and call.tool_calls[0][0] == "plan" and "(:init" in call.tool_calls[0][1]["problem"]
    out = "solved by fast-downward in 0.1 s, 2 steps:\n1. (pick-up b1)\n2. (stack b1 b2)"
    assert expert_turn(plan, 1, out).text == "<answer>\n(pick-up b1)\n(stack b1 b2)\n</answer>"  # type: ignore[union-attr]


def test_planning_expert_writes_the_atoms_in_the_order_the_description_states_them() -> None:
    import re

    from reasonloop.recipes.tiny import in_description_order

    for task in SUITES.get("planning").generate(6, seed=5, difficulty=2):
        original = next(a for t in task.expert for _, a in t.tool_calls if "problem" in a)["problem"]
        ordered = in_description_order(original)
        init, goal = (re.findall(r"\([^()]*\)", part) for part in ordered.split("(:init", 1)[1].split("(:goal", 1))
        assert sorted(init) == init and sorted(goal) == goal  # the description's order (render_state sorts)
        stated = task.prompt.split("Initially: ", 1)[1].split("\nGoal: ", 1)[0].rstrip(".").split(". ")
        assert len(stated) == len(init)
        for atom, sentence in zip(init, stated, strict=True):  # atom i is sentence i
            assert all(arg in sentence.split() for arg in atom.strip("()").split()[1:]), (atom, sentence)
        assert sorted(re.findall(r"\([^()]*\)", ordered)) == sorted(re.findall(r"\([^()]*\)", original))
        atom = re.compile(r"\([^()]*\)")
        assert atom.sub("", ordered) == atom.sub("", original)  # the same text around the atoms


def test_lookup_expert_quotes_the_fact_it_read_then_answers(tmp_path: Path) -> None:
    tasks = SUITES.get("lookup").generate(6, seed=3, difficulty=1)
    policy = _policy(tasks)
    for traj in record_experts(policy, tasks, cache_dir=tmp_path, quote_lookup=True):  # the real search tool
        task = next(t for t in tasks if t.id == traj.task_id)
        final = traj.steps[-1].text  # type: ignore[union-attr]
        relation = final.split(f" {task.answer}. <answer>")[0]
        assert final == f"{relation} {task.answer}. <answer>{task.answer}</answer>"
        assert f"{relation} {task.answer}" in traj.tool_steps()[-1].result.output  # the quote is the retrieved text's
    # nothing retrieved says it: no quote, the answer alone
    assert expert_turn(tasks[0], 1, "0 documents", quote_lookup=True).text == f"<answer>{tasks[0].answer}</answer>"  # type: ignore[union-attr]
    # without quote_lookup (the bpe variant) the expert answers without a quote
    plain = expert_turn(tasks[0], 1, f"X works for {tasks[0].answer}.")
    assert plain is not None and plain.text == f"<answer>{tasks[0].answer}</answer>"
    shipped, bpe = recipe_variant("shipped"), recipe_variant("bpe")
    assert shipped == TinyRecipeConfig() and shipped.quote_lookup and shipped.letter_names and shipped.arch == "llama"
    assert not (bpe.quote_lookup or bpe.letter_names or bpe.sft_bf16) and bpe.arch == "qwen2"
    with pytest.raises(ConfigError, match="bpe, shipped"):
        recipe_variant("nope")
    with pytest.raises(ConfigError, match="arch='llama'"):
        run_tiny_recipe(tmp_path / "bad", config=TinyRecipeConfig(arch="qwen2"))


def test_held_out_tasks_differ_from_training_tasks() -> None:
    train = {t.prompt for s in TINY_SUITES for t in training_tasks(s, 20, 0)}
    held = held_out_tasks(TINY_SUITES, 5)
    assert all(len(ts) == 5 for ts in held.values())
    seen = {s: sum(t.prompt in train for t in ts) for s, ts in held.items()}
    # small planning instances can repeat by chance (few distinct problems); the rest never do
    assert seen.pop("planning") <= 2 and not any(seen.values())



def test_recipe_tasks_are_distinct_and_never_an_evaluation_task() -> None:
    from reasonloop.recipes.tiny import evaluation_prompts, recipe_tasks

    held = evaluation_prompts(("planning", "logic"), seed=0, n=40)
    raw = [t.prompt for s in ("planning", "logic") for t in training_tasks(s, 400, 0)]
    assert len(set(raw)) < len(raw) and any(p in held for p in raw)  # easy planning repeats
    tasks = recipe_tasks(("planning", "logic"), 1600, 0, exclude=held)  # planning scaled to 400
    prompts = [t.prompt for t in tasks]
    assert len(prompts) == len(set(prompts)) and not held & set(prompts)
    assert {t.suite for t in tasks} == {"planning", "logic"}


def test_tokenizer_keeps_digits_and_names_letter_by_letter_and_ships_the_template() -> None:
    from reasonloop.policy.templates import TINY_TAGS

    tok = build_tokenizer(training_tasks("arith", 10, 0), vocab_size=400)
    assert tok.tokenize("4571") == ["4", "5", "7", "1"]
    assert tok.chat_template == TINY_TAGS.source
    letters = build_tokenizer(training_tasks("arith", 10, 0), vocab_size=400, letter_names=True)
    ids = letters.encode("Ask Zupar", add_special_tokens=False)  # names too, letter by letter
    assert [letters.decode([i]) for i in ids] == ["A", "s", "k", " ", "Z", "u", "p", "a", "r"]


@pytest.mark.slow
def test_recording_runs_real_tools_and_sft_lowers_the_loss(tmp_path: Path) -> None:
    tasks = training_tasks("arith", 3, 0)
    policy = _policy(tasks)
    trajs = record_experts(policy, tasks, cache_dir=tmp_path)
    assert len(trajs) == len(tasks)  # every expert episode verified correct
    arith = next(t for t in trajs if t.metadata["suite"] == "arith")
    tool = arith.tool_steps()[0]
    assert tool.result.status.value == "ok" and arith.final_answer == tool.result.output.strip()
    text = policy.tokenizer.decode(arith.token_ids())
    assert "<calculator>" in text and "<answer>" in text
    masked = [i for i, m in zip(arith.token_ids(), arith.loss_mask(), strict=True) if m]
    assert "<calculator>" in policy.tokenizer.decode(masked)  # the call is trained on
    assert tool.result.output.strip() + "<|im_end|>" not in policy.tokenizer.decode(masked)  # the result is not
    history = sft_train(policy.model, trajs, steps=30, batch=6, lr=3e-3, seed=0,
                        pad_id=int(policy.tokenizer.pad_token_id))
    assert len(history) == 30
    first, last = (sum(h["sft_loss"] for h in part) / 3 for part in (history[:3], history[-3:]))
    assert last < 0.75 * first


def test_shipped_model_is_small_standard_and_loads_as_tiny() -> None:
    from transformers import AutoConfig

    from reasonloop.policy.registry import load_policy

    size = sum(p.stat().st_size for p in ASSET_DIR.iterdir())
    assert size <= 20 * 1024 * 1024
    assert AutoConfig.from_pretrained(ASSET_DIR).model_type in ("qwen2", "llama")
    policy = load_policy("tiny", device="cpu")
    assert policy.template.name == TEMPLATE and policy.tool_format == "tags"  # type: ignore[attr-defined]


@pytest.mark.slow
def test_shipped_model_uses_the_calculator_on_held_out_arith(tmp_path: Path) -> None:
    from reasonloop.policy.registry import load_policy
    from reasonloop.recipes.tiny_loop import evaluate_suites

    policy = load_policy("tiny", device="cpu")
    tasks = held_out_tasks(["arith"], 6)
    with_tools, trajs = evaluate_suites(policy, tasks, tools=True, cache_dir=tmp_path)
    without, _ = evaluate_suites(policy, tasks, tools=False, cache_dir=tmp_path)
    for traj in trajs["arith"]:  # a well-formed calculator call, its result read, an answer given
        calls = traj.tool_steps()
        assert calls and calls[0].call.name == "calculator" and calls[0].result.status.value == "ok"
        assert traj.final_answer is not None and traj.final_answer.strip().isdigit()
    assert with_tools["arith"] >= without["arith"]


def test_suite_agents_run_without_tools(tmp_path: Path) -> None:
    from reasonloop.recipes.tiny_loop import accuracy, suite_agent

    tasks = training_tasks("arith", 1, 0)[:1]
    policy = _policy(tasks)
    agent = suite_agent(policy, "arith", tasks, tools=False, cache_dir=tmp_path)

    async def go():
        from reasonloop.agents import AgentRuntime

        async with AgentRuntime(agent) as runtime:
            return await runtime.run(tasks[0].prompt, task_id=tasks[0].id)

    traj = asyncio.run(go())
    assert not traj.tool_steps() and accuracy([traj]) == 0.0 and accuracy([]) == 0.0


@pytest.mark.slow
def test_recipe_runs_end_to_end_small(tmp_path: Path) -> None:
    import json

    cfg = TinyRecipeConfig(suites=("arith",), n_train=3, vocab_size=500, hidden=32, layers=1, heads=2, kv_heads=1,
                           sft_steps=4, sft_batch=4, arpo_steps=1, eval_n=2)
    lines: list[str] = []
    summary = run_tiny_recipe(tmp_path, config=cfg, log=lines.append)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["expert_trajectories"] == 6 and saved["sft_steps_done"] == 4 and len(saved["arpo"]) == 1
    assert set(summary["accuracy_with_tools"]) == {"arith"} and (tmp_path / "model" / "model.safetensors").exists()
    assert any(line.startswith("accuracy with tools") for line in lines)


def test_arpo_draws_again_when_a_group_has_no_signal_and_never_trains_on_it(tmp_path: Path) -> None:
    """Greedy samples of one prompt are identical, so every group is all right or all wrong."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reasonloop.recipes.tiny_loop import arpo_finetune

    tokenizer = AutoTokenizer.from_pretrained(ASSET_DIR)
    model = AutoModelForCausalLM.from_pretrained(ASSET_DIR)
    before = [p.detach().clone() for p in model.parameters()]
    tasks = SUITES.get("arith").generate(3, seed=5)
    history = arpo_finetune(model, tokenizer, {"arith": tasks}, steps=1, cache_dir=tmp_path, group_size=2,
                            global_samples=1, temperature=0.0, max_draws=3)
    (entry,) = history
    assert entry["groups_drawn"] == 3 and entry["groups_trained"] == 0 and entry["trajectories"] == 6
    assert "loss" not in entry  # nothing to learn from: no update at all
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # two groups wanted per step: up to max_draws draws for each, still none trained on
    (entry,) = arpo_finetune(model, tokenizer, {"arith": tasks}, steps=1, cache_dir=tmp_path, group_size=2,
                             global_samples=1, temperature=0.0, max_draws=2, groups_per_step=2)
    assert entry["groups_drawn"] == 4 and entry["groups_trained"] == 0
    # without the filter every drawn group is trained on
    (entry,) = arpo_finetune(model, tokenizer, {"arith": tasks}, steps=1, cache_dir=tmp_path, group_size=2,
                             global_samples=1, temperature=0.0, groups_per_step=2)
    assert entry["groups_drawn"] == entry["groups_trained"] == 2 and entry["trajectories"] == 4
