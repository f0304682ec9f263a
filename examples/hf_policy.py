"""Sample from a local transformers model with exact token ids, log-probs and entropies.

Builds a tiny random-init model (no download) in a temporary directory, loads it
back through the ``hf:PATH`` model string, runs one turn, appends a tool result
with ``extend`` and runs the next turn, then prints every sampled token.

    python examples/hf_policy.py --max-tokens 8 --seed 0
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

from reasonloop.policy.base import Context, SamplingParams, ToolSpec
from reasonloop.policy.hf import HFPolicy
from reasonloop.policy.tiny_model import build_tiny_model, build_tiny_tokenizer, save_tiny

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)


def _show(
    policy: HFPolicy,
    label: str,
    completion_ids: list[int],
    logprobs: list[float],
    entropies: list[float],
    finish: str | None,
) -> None:
    print(f"{label}: {len(completion_ids)} tokens, finish_reason={finish}")
    for token_id, logprob, entropy in zip(completion_ids, logprobs, entropies, strict=True):
        piece = policy.tokenizer.decode([token_id], skip_special_tokens=False)
        print(f"  id={token_id:5d}  logprob={logprob:8.4f}  entropy={entropy:6.4f}  text={piece!r}")


async def run(max_tokens: int, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tiny_tokenizer()
        save_tiny(build_tiny_model(tokenizer, seed=seed), tokenizer, tmp)
        policy = HFPolicy.from_model_string(f"hf:{tmp}", device="cpu")
        messages = [{"role": "user", "content": "What is 2 + 3? Use the calculator."}]
        context = Context(messages=list(messages), token_ids=policy.start(messages, [CALCULATOR]))
        print(f"policy={policy.name!r} template={policy.template.name} prompt_tokens={len(context.token_ids or [])}")
        sampling = SamplingParams(temperature=1.0, max_tokens=max_tokens, seed=seed)
        first = await policy.generate(context, [CALCULATOR], sampling)
        _show(policy, "turn 1", first.token_ids, first.logprobs or [], first.entropies or [], first.finish_reason)
        context.messages.append(first.message())
        context.token_ids = [*(context.token_ids or []), *first.token_ids]
        forced = policy.extend(context, [{"role": "tool", "content": "5"}], [CALCULATOR])
        print(f"extend: {len(forced)} forced ids: {policy.tokenizer.decode(forced)!r}")
        context.messages.append({"role": "tool", "content": "5"})
        context.token_ids = [*context.token_ids, *forced]
        second = await policy.generate(context, [CALCULATOR], SamplingParams(max_tokens=max_tokens, seed=seed + 1))
        _show(policy, "turn 2", second.token_ids, second.logprobs or [], second.entropies or [], second.finish_reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(run(args.max_tokens, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
