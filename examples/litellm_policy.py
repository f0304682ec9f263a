"""Ask an API model one question, with a Python tool offered, through ``LiteLLMPolicy``.

The model string picks the provider; the key comes from the provider's usual
environment variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``...)::

    python examples/litellm_policy.py --model openai/gpt-4o-mini
    python examples/litellm_policy.py --model anthropic/claude-3-5-haiku-latest
    python examples/litellm_policy.py --model hosted_vllm/Qwen/Qwen3-4B --api-base http://localhost:8000/v1
    python examples/litellm_policy.py --model ollama/qwen3 --tool-format tags

It prints the assistant turn: text, decoded tool calls (or why they could not be
decoded), finish reason, tokens, cost and, when the provider returns top-k
log-probs, the mean top-k entropy. ``--cache FILE`` serves a repeated run from
a SQLite response cache without calling the API. The tool is offered, not run:
executing model-written code is the sandbox's job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from reasonloop.errors import PolicyError
from reasonloop.policy.base import Completion, Context, SamplingParams, ToolSpec
from reasonloop.policy.cache import ResponseCache
from reasonloop.policy.litellm import LiteLLMPolicy

__all__ = ["main"]

PYTHON_TOOL = ToolSpec(
    name="python",
    description="Run Python code and return what it prints.",
    parameters={"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
)
QUESTION = "What is the sum of the squares of the integers from 1 to 100? Use the python tool to compute it."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="One assistant turn from an API model through LiteLLM.")
    parser.add_argument("--model", default="openai/gpt-4o-mini", help="LiteLLM model string (provider/name)")
    parser.add_argument("--api-base", default=None, help="server URL for self-hosted models (vLLM, SGLang, Ollama)")
    parser.add_argument("--tool-format", default="openai", choices=["openai", "tags", "json"])
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--top-logprobs", type=int, default=5, help="alternatives per token for top-k entropy")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--max-retries", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per attempt")
    parser.add_argument("--cache", default=None, help="SQLite file for the response cache")
    parser.add_argument("--json", action="store_true", help="print the completion as JSON")
    return parser


def _summary(completion: Completion) -> str:
    lines = [f"finish_reason: {completion.finish_reason}   cached: {completion.cached}"]
    lines.append(f"text: {completion.text!r}")
    for call in completion.tool_calls:
        lines.append(f"tool call {call.name}({json.dumps(call.arguments)})")
    for error in completion.parse_errors:
        lines.append(f"could not decode: {error}")
    usage = completion.usage
    cost = "unknown" if usage.cost_usd is None else f"${usage.cost_usd:.6f}"
    lines.append(f"tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion, cost {cost}")
    if completion.entropies:
        mean = sum(completion.entropies) / len(completion.entropies)
        lines.append(f"mean top-{completion.top_k} entropy: {mean:.3f} nats over {len(completion.entropies)} tokens")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example; returns the process exit code (2 when the API call failed)."""
    args = _parser().parse_args(argv)
    cache = ResponseCache(args.cache) if args.cache else None
    policy = LiteLLMPolicy(
        args.model,
        api_base=args.api_base,
        tool_format=args.tool_format,
        max_retries=args.max_retries,
        timeout_s=args.timeout,
        cache=cache,
    )
    context = Context(messages=[
        {"role": "system", "content": "You are a careful assistant. Compute with tools; do not guess."},
        {"role": "user", "content": args.question},
    ])
    sampling = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, top_logprobs=args.top_logprobs)
    try:
        completion = asyncio.run(policy.generate(context, [PYTHON_TOOL], sampling))
    except PolicyError as exc:  # already scrubbed of keys
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(completion.model_dump_json(indent=2) if args.json else _summary(completion))
    return 0


if __name__ == "__main__":
    sys.exit(main())
