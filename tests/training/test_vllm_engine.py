"""The in-process vLLM engine.

On CPU: the conversion of vLLM's outputs, built here as plain dataclasses with the
attribute names of ``vllm.outputs.CompletionOutput`` and ``vllm.sequence.Logprob``,
into a :class:`Completion` (ids, log-probs, top-k entropy, finish reasons, tool calls
in the local tool format); the sampling parameters; the weight push through an object
shaped like ``vllm.LLM`` (``apply_model``) over a real model. On a CUDA machine with
vLLM: an agent episode and a weight sync through a real vLLM.
"""

from __future__ import annotations

import asyncio
import copy
import math
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from reasonloop.errors import ConfigError, PolicyError
from reasonloop.policy.base import SamplingParams
from reasonloop.training.vllm_engine import (
    VLLMConfig,
    VLLMEngine,
    build_llm,
    completion_from_output,
    push_weights,
    sampling_kwargs,
    vllm_version,
)
from reasonloop.training.weight_sync import merged_weights

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

LN2 = math.log(2)


@dataclass
class Logprob:
    """``vllm.sequence.Logprob``."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    """``vllm.outputs.CompletionOutput``."""

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@pytest.fixture(scope="module")
def local() -> Any:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.training.toy import toy_policy_pair

    tokenizer, model = toy_policy_pair(seed=3)
    return HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu", template="chatml-tags"))


def _output(ids: list[int], finish: str, stop_reason: int | str | None = None) -> CompletionOutput:
    """Each position: the sampled token at p = 1/2 (rank 1) and one alternative at p = 1/2,
    plus a third entry ranked below the top 2 (vLLM adds the sampled token when it ranks lower)."""
    positions = [{t: Logprob(-LN2, 1), t + 1: Logprob(-LN2, 2), t + 2: Logprob(-9.0, 40)} for t in ids]
    return CompletionOutput(index=0, text="", token_ids=ids, cumulative_logprob=-LN2 * len(ids), logprobs=positions,
                            finish_reason=finish, stop_reason=stop_reason)


def test_conversion_keeps_ids_logprobs_and_topk_entropy(local: Any) -> None:
    from reasonloop.training.toy import lookup_tool

    tools = [lookup_tool().spec]
    ids = [int(i) for i in local.tokenizer.encode("<lookup>42</lookup>", add_special_tokens=False)]
    done = completion_from_output(local, _output(ids, "stop", "</lookup>"), prompt_len=11, tools=tools, top_k=2,
                                  model="vllm:toy")
    assert done.token_ids == ids and done.logprobs == pytest.approx([-LN2] * len(ids))
    assert done.entropies == pytest.approx([LN2] * len(ids))  # -2 * (1/2) ln(1/2); the rank-40 entry is left out
    assert done.entropy_kind == "topk" and done.top_k == 2 and done.finish_reason == "stop"
    assert done.text == "<lookup>42</lookup>" and [(c.name, c.arguments) for c in done.tool_calls] == [
        ("lookup", {"key": "42"})]
    assert done.usage.prompt_tokens == 11 and done.usage.completion_tokens == len(ids) and done.model == "vllm:toy"


def test_sampled_token_outside_the_top_k(local: Any) -> None:
    out = CompletionOutput(index=0, text="", token_ids=[7], cumulative_logprob=-5.0, finish_reason="length",
                           logprobs=[{3: Logprob(-0.5, 1), 4: Logprob(-1.5, 2), 7: Logprob(-5.0, 9)}])
    done = completion_from_output(local, out, prompt_len=1, tools=[], top_k=2, model="m")
    want = -(math.exp(-0.5) * -0.5 + math.exp(-1.5) * -1.5)
    assert done.logprobs == [-5.0] and done.entropies == pytest.approx([want]) and done.finish_reason == "length"


def test_turn_end_and_abort(local: Any) -> None:
    end = sorted(local._stop_ids)[0]
    text_ids = [int(i) for i in local.tokenizer.encode("<answer>7</answer>", add_special_tokens=False)]
    done = completion_from_output(local, _output([*text_ids, end], "stop"), prompt_len=3, tools=[], top_k=2, model="m")
    assert done.token_ids[-1] == end and done.text == "<answer>7</answer>" and not done.tool_calls
    aborted = completion_from_output(local, _output(text_ids, "abort"), prompt_len=3, tools=[], top_k=2, model="m")
    assert aborted.finish_reason == "error" and not aborted.token_ids


def test_missing_or_misaligned_logprobs_are_errors(local: Any) -> None:
    out = _output([5, 6], "stop")
    out.logprobs = None
    with pytest.raises(PolicyError, match="no or misaligned"):
        completion_from_output(local, out, prompt_len=1, tools=[], top_k=2, model="m")
    out = _output([5, 6], "stop")
    out.logprobs = [{9: Logprob(-0.1)}, {6: Logprob(-0.2)}]
    with pytest.raises(PolicyError, match="sampled token 5"):
        completion_from_output(local, out, prompt_len=1, tools=[], top_k=2, model="m")


def test_sampling_kwargs_and_config_checks() -> None:
    kw = sampling_kwargs(SamplingParams(temperature=0.7, top_p=0.9, max_tokens=64, seed=11, stop=("</x>",)),
                         stops=["</x>", "</lookup>", "</x>"], stop_ids=[5, 2, 5], top_logprobs=3, room=20)
    assert kw == {"n": 1, "temperature": 0.7, "top_p": 0.9, "max_tokens": 20, "seed": 11,
                  "stop": ["</x>", "</lookup>"], "stop_token_ids": [2, 5], "include_stop_str_in_output": True,
                  "logprobs": 3, "skip_special_tokens": False}
    assert sampling_kwargs(SamplingParams(max_tokens=8), stops=[], stop_ids=[], top_logprobs=1)["max_tokens"] == 8
    for bad in ({"gpu_memory_utilization": 0.0}, {"dtype": "int8"}, {"top_logprobs": 0}, {"max_model_len": 1}):
        with pytest.raises(ConfigError):
            VLLMConfig(**bad)


class _VLLMModel:
    """Stands in for a vLLM model class: ``load_weights`` copies by name and reports what it loaded."""

    def __init__(self, model: Any, skip: str | None = None) -> None:
        self.model, self.skip = model, skip

    def named_parameters(self) -> Any:
        return self.model.named_parameters()

    def load_weights(self, weights: Any) -> set[str]:
        params = dict(self.model.named_parameters())
        loaded = set()
        with torch.no_grad():
            for name, tensor in weights:
                if name != self.skip:
                    params[name].copy_(tensor)
                    loaded.add(name)
        return loaded


class _LLM:
    """The two ``vllm.LLM`` methods a weight push uses."""

    def __init__(self, model: _VLLMModel, *, busy: bool = False) -> None:
        self.model, self.resets, self.busy = model, 0, busy

    def apply_model(self, func: Any) -> list[Any]:
        return [func(self.model)]

    def reset_prefix_cache(self) -> bool:
        self.resets += 1
        return not self.busy


def test_push_weights_loads_the_merged_lora_model_and_resets_the_cache() -> None:
    from reasonloop.training.toy import toy_policy_pair

    _, base = toy_policy_pair(seed=6)
    served = copy.deepcopy(base)
    trained = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                        task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in trained.named_parameters():
            if "lora_B" in name:
                param.fill_(0.05)
    llm = _LLM(_VLLMModel(served))
    push_weights(llm, list(merged_weights(trained)))
    ids = torch.tensor([[3, 14, 15, 92, 65]])
    with torch.no_grad():
        assert torch.allclose(served(input_ids=ids).logits, trained(input_ids=ids).logits, atol=1e-5)
    assert llm.resets == 1
    with pytest.raises(PolicyError, match="did not load 1 parameters"):
        push_weights(_LLM(_VLLMModel(served, skip="model.norm.weight")), list(merged_weights(trained)))
    with pytest.raises(PolicyError, match="could not reset its prefix cache"):
        push_weights(_LLM(_VLLMModel(served), busy=True), list(merged_weights(trained)))
    with pytest.raises(PolicyError, match=f"vLLM {vllm_version()} has neither"):
        push_weights(object(), [])


def test_engine_pushes_its_trainer_model_and_checks_the_context_window() -> None:
    from reasonloop.policy.base import Context
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.training.toy import toy_policy_pair

    tokenizer, model = toy_policy_pair(seed=8)
    policy = HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu", template="chatml-tags"))
    served = copy.deepcopy(model)
    with torch.no_grad():
        model.model.norm.weight.mul_(3.0)  # the trainer moved on
    llm = _LLM(_VLLMModel(served))
    engine = VLLMEngine(policy, llm, VLLMConfig(max_model_len=16))
    assert engine.module is model and engine.tokenizer is tokenizer and engine.name == f"vllm:{policy.name}"
    engine.sync_weights()
    assert torch.equal(served.model.norm.weight, model.model.norm.weight) and llm.resets == 1
    assert engine.stats.syncs == 1 and engine.stats.as_dict()["engine_weight_lag"] == 0.0
    with pytest.raises(PolicyError, match="does not fit the model's 16 positions"):
        asyncio.run(engine.generate(Context(token_ids=list(range(16))), [], SamplingParams()))


def test_importing_the_engine_does_not_import_vllm() -> None:
    code = ("import sys, reasonloop, reasonloop.training.vllm_engine\n"
            "assert 'vllm' not in sys.modules and 'torch' not in sys.modules\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-1500:]


def test_without_vllm_building_says_which_extra() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(PolicyError, match=r"reasonloop\[vllm\]"):
            build_llm("/nonexistent", VLLMConfig())
    else:
        pytest.skip("vLLM is installed here")


def _scores(model: Any, prompt: list[int], ids: list[int]) -> list[float]:
    """Log-probs of ``ids`` after ``prompt`` under ``model`` at temperature 1 (teacher forcing)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + ids], device=device)).logits[0, len(prompt) - 1 : -1]
    logp = torch.log_softmax(logits.float(), dim=-1)
    return [float(logp[i, t]) for i, t in enumerate(ids)]


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.vllm
def test_agent_episode_and_weight_sync_on_a_real_vllm() -> None:
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'reasonloop[vllm]')")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a CUDA GPU")
    from reasonloop.agents import AgentRuntime, build_react_agent
    from reasonloop.policy.base import Context
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.training.toy import lookup_tool, toy_policy_pair

    tokenizer, base = toy_policy_pair(hidden=128, heads=2, seed=7)  # head size 64, which vLLM's kernels take
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      task_type="CAUSAL_LM"))
    local = HFPolicy(model, tokenizer, HFPolicyConfig(device="cuda", template="chatml-tags"))
    engine = VLLMEngine.launch(local, VLLMConfig(gpu_memory_utilization=0.3, dtype="bfloat16", enforce_eager=True,
                                                 top_logprobs=4))
    try:
        agent = build_react_agent(engine, [lookup_tool()], sampling=SamplingParams(max_tokens=8), max_steps=2)

        async def go() -> Any:
            async with AgentRuntime(agent) as runtime:
                return await runtime.run("Code of 42?", task_id="t", seed=5)

        traj = asyncio.run(go())
        steps = traj.policy_steps()
        assert steps and all(s.entropy_kind == "topk" and s.top_k == 4 and s.token_ids for s in steps)
        first = steps[0]
        # vLLM started on dummy weights: matching log-probs show the launch push loaded the trainer's
        assert first.logprobs == pytest.approx(_scores(model, traj.prompt_token_ids, first.token_ids), abs=0.05)
        assert engine.stats.calls == len(steps)

        old = copy.deepcopy(model)
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.copy_((torch.randn(param.shape, generator=gen) * 2.0).to(param.device))
        engine.sync_weights()
        ctx = Context(token_ids=traj.prompt_token_ids)
        turn = asyncio.run(engine.generate(ctx, [], SamplingParams(temperature=0, max_tokens=6)))
        assert turn.logprobs == pytest.approx(_scores(model, ctx.token_ids, turn.token_ids), abs=0.05)
        stale = _scores(old, ctx.token_ids, turn.token_ids)
        assert max(abs(a - b) for a, b in zip(turn.logprobs or [], stale, strict=True)) > 0.3
        assert engine.stats.syncs >= 2 and engine.stats.as_dict()["engine_off_policy"] == 0.0
    finally:
        engine.close()
