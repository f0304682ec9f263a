"""Conformance of HFPolicy with every registered chat template: the tokens trained on
are the tokens sampled, and incremental ``extend`` renders exactly what the template
renders for the whole conversation.

Each template runs a 3-turn tool episode through the real sampling loop (greedy) on a
tiny model trained on that episode (see ``conftest.train_episode``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from reasonloop.policy.base import Completion, Context, SamplingParams
from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
from reasonloop.policy.hf_sampling import score_tokens
from reasonloop.policy.templates import render, turn_closing
from reasonloop.trajectory.schema import NoteStep, PolicyStep, ToolResult, ToolStatus, ToolStep, Trajectory
from reasonloop.trajectory.tensors import trajectory_to_tensors, verify_alignment

from .conftest import TEMPLATE_NAMES, TrainedEpisode, single_torch_thread

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run_episode(trained: TrainedEpisode, sampling: SamplingParams) -> dict[str, Any]:
    """start -> generate -> extend(tool) -> generate -> extend(user) -> generate, recorded."""
    ep = trained.episode
    policy = HFPolicy(trained.model, trained.tokenizer, HFPolicyConfig(device="cpu", template=ep.template.name))
    prompt = policy.start(ep.messages, ep.tools)
    ctx = Context(messages=list(ep.messages), token_ids=list(prompt))
    traj = Trajectory(
        task_id="conformance",
        messages=list(ep.messages),
        prompt_token_ids=list(prompt),
        tools=[t.openai_schema() for t in ep.tools],
    )
    seen_contexts: list[list[int]] = []
    completions: list[Completion] = []
    forced: list[list[int]] = []
    for turn in range(len(ep.turns)):
        seen_contexts.append(list(ctx.token_ids or []))
        completion = policy.complete(ctx, ep.tools, sampling)
        completions.append(completion)
        traj.steps.append(
            PolicyStep(
                node="agent",
                text=completion.text,
                token_ids=completion.token_ids,
                logprobs=completion.logprobs,
                entropies=completion.entropies,
                entropy_kind=completion.entropy_kind,
                finish_reason=completion.finish_reason,
                tool_calls=completion.tool_calls,
                sampling=sampling.as_dict(),
            )
        )
        ctx.messages.append(completion.message())
        ctx.token_ids = [*(ctx.token_ids or []), *completion.token_ids]
        if turn == len(ep.appended):
            break
        new = ep.appended[turn]
        ids = policy.extend(ctx, new, ep.tools)
        forced.append(ids)
        if new[0]["role"] == "tool":
            result = ToolResult(status=ToolStatus.OK, output=new[0]["content"])
            traj.steps.append(ToolStep(node="tools", call=completion.tool_calls[0], result=result, token_ids=ids))
        else:
            traj.steps.append(NoteStep(node="feedback", role="user", text=new[0]["content"], token_ids=ids))
        ctx.messages.extend(new)
        ctx.token_ids = [*ctx.token_ids, *ids]
    return {
        "policy": policy,
        "traj": traj,
        "contexts": seen_contexts,
        "completions": completions,
        "forced": forced,
        "ctx": ctx,
    }


@pytest.fixture(scope="module", params=TEMPLATE_NAMES)
def greedy_run(request: pytest.FixtureRequest, trained_episode: Any) -> tuple[TrainedEpisode, dict[str, Any]]:
    trained = trained_episode(request.param)
    with single_torch_thread():
        return trained, _run_episode(trained, SamplingParams(temperature=0.0, max_tokens=64))


def test_greedy_reproduces_the_trained_episode(greedy_run: tuple[TrainedEpisode, dict[str, Any]]) -> None:
    trained, run = greedy_run
    ep = trained.episode
    texts = [c.text for c in run["completions"]]
    assert texts == ep.turns
    assert [c.finish_reason for c in run["completions"]] == ["stop", "stop", "stop"]
    first = run["completions"][0]
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("calculator", {"expression": "2 + 3"})]
    assert first.parse_errors == []
    im_end = trained.tokenizer.convert_tokens_to_ids("<|im_end|>")
    # Turn 1 stopped on the tool-call stop string; turns 2 and 3 sampled <|im_end|>.
    assert [c.token_ids[-1] == im_end for c in run["completions"]] == [not x for x in [True, False, False]]
    assert all(c.entropy_kind == "exact" for c in run["completions"])


def test_tokens_trained_on_are_tokens_sampled(greedy_run: tuple[TrainedEpisode, dict[str, Any]]) -> None:
    _, run = greedy_run
    traj: Trajectory = run["traj"]
    assert verify_alignment(traj) == []
    seq = trajectory_to_tensors(traj)
    assert seq.input_ids == run["ctx"].token_ids
    for context in run["contexts"]:  # each generate consumed a prefix of the training sequence
        assert seq.input_ids[: len(context)] == context
    sampled = [i for i, m in zip(seq.input_ids, seq.loss_mask, strict=True) if m == 1]
    assert sampled == [t for c in run["completions"] for t in c.token_ids]
    spans: list[tuple[int, int]] = []
    for context, completion in zip(run["contexts"], run["completions"], strict=True):
        spans.append((len(context), len(context) + len(completion.token_ids)))
        assert seq.input_ids[spans[-1][0] : spans[-1][1]] == completion.token_ids
        assert seq.old_logprobs[spans[-1][0] : spans[-1][1]] == completion.logprobs
    expected_mask = [int(any(a <= i < b for a, b in spans)) for i in range(len(seq))]
    assert seq.loss_mask == expected_mask


def test_incremental_extend_equals_full_template_render(greedy_run: tuple[TrainedEpisode, dict[str, Any]]) -> None:
    trained, run = greedy_run
    ep = trained.episode
    tok = trained.tokenizer
    decoded = tok.decode(run["ctx"].token_ids, skip_special_tokens=False)
    full = render(ep.template.source, ep.conversation(), [t.openai_schema() for t in ep.tools])
    # The last turn ended on a sampled <|im_end|>; the template then writes only its newline.
    closing = turn_closing(ep.template.source)
    assert closing == "<|im_end|>\n"
    assert decoded + "\n" == full
    assert run["ctx"].messages == ep.conversation()
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    newline = tok.encode("\n", add_special_tokens=False)
    after_stop_string, after_im_end = run["forced"]
    assert after_stop_string[0] == im_end  # closes the turn the stop string left open
    assert after_im_end[: len(newline)] == newline  # the template's newline after a sampled <|im_end|>


def test_logprobs_and_entropies_match_teacher_forcing(greedy_run: tuple[TrainedEpisode, dict[str, Any]]) -> None:
    trained, run = greedy_run
    seq = trajectory_to_tensors(run["traj"])
    with torch.no_grad():
        logits = trained.model(input_ids=torch.tensor([seq.input_ids])).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1)  # greedy: scored at temperature 1
    targets = torch.tensor(seq.input_ids[1:])
    token_logp = logp.gather(1, targets[:, None])[:, 0]
    entropy = -(logp.exp() * logp).sum(-1)
    positions = [i for i, m in enumerate(seq.loss_mask) if m]
    for i in positions:
        assert seq.old_logprobs[i] == pytest.approx(float(token_logp[i - 1]), abs=1e-4)
        assert seq.entropies[i] == pytest.approx(float(entropy[i - 1]), abs=1e-4)
    # The trainer-side helper gives the same numbers, aligned with the sequence.
    scored_logp, scored_entropy = score_tokens(logits[None], torch.tensor([seq.input_ids]), temperature=0.0)
    mask = torch.tensor(seq.loss_mask, dtype=torch.float32)
    assert torch.allclose(scored_logp[0] * mask, torch.tensor(seq.old_logprobs), atol=1e-4)
    assert torch.allclose(scored_entropy[0] * mask, torch.tensor(seq.entropies), atol=1e-4)
