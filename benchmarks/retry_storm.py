"""Retry behaviour under an API fault storm: LiteLLMPolicy's retry policy vs LiteLLM's own retries.

Both clients send the same concurrent requests to the loopback OpenAI-compatible
test server (tests/policy/openai_server.py) in three storms:

* ``429+500``: the first attempt of every request gets 429 with ``Retry-After: 1``,
  later attempts fail with 500 at 10% (seeded);
* ``400``: every request is a client error (must not be retried);
* ``401``: every request has a bad key (must not be retried).

Columns: requests that succeeded, attempts the server saw (total and the most for
one request), retries that arrived before the server's Retry-After had elapsed,
and wall time. Run: ``python benchmarks/retry_storm.py [--requests 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from reasonloop.policy.base import Context, SamplingParams  # noqa: E402
from reasonloop.policy.litellm import LiteLLMPolicy  # noqa: E402
from reasonloop.policy.retry import RetryConfig  # noqa: E402

__all__ = ["main"]

MAX_RETRIES = 3


def _load_server() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openai_server", ROOT / "tests" / "policy" / "openai_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["openai_server"] = module
    spec.loader.exec_module(module)
    return module


srv = _load_server()


def _ours(url: str) -> Callable[[str], Awaitable[Any]]:
    policy = LiteLLMPolicy(
        "openai/bench", api_base=url, api_key="sk-bench-0123456789", max_retries=MAX_RETRIES,
        backoff=RetryConfig(initial_backoff_s=0.1, max_backoff_s=2.0), jitter_seed=0,
    )
    return lambda prompt: policy.generate(Context(messages=[{"role": "user", "content": prompt}]), [], SamplingParams(max_tokens=8))


def _litellm_builtin(url: str) -> Callable[[str], Awaitable[Any]]:
    import litellm

    litellm.suppress_debug_info = True
    return lambda prompt: litellm.acompletion(
        model="openai/bench", api_base=url, api_key="sk-bench-0123456789",
        messages=[{"role": "user", "content": prompt}], max_tokens=8, num_retries=MAX_RETRIES,
    )


def _measure(client: Callable[[str], Callable[[str], Awaitable[Any]]], handler: Any, n: int, tag: str) -> dict[str, Any]:
    prompts = [f"{tag} {i}" for i in range(n)]
    with srv.OpenAIServer(handler) as server:
        call = client(server.url)

        async def run() -> list[Any]:
            return await asyncio.gather(*(call(p) for p in prompts), return_exceptions=True)

        start = time.perf_counter()
        results = asyncio.run(run())
        wall = time.perf_counter() - start
        groups = server.by_key()
    early = 0
    for attempts in groups.values():
        for previous, current in itertools.pairwise(attempts):
            wait = float(previous.status == 429)  # the storm's Retry-After is 1 s
            early += current.arrival - previous.arrival < wait
    return {
        "ok": sum(not isinstance(r, BaseException) for r in results),
        "attempts": sum(len(a) for a in groups.values()),
        "max/request": max((len(a) for a in groups.values()), default=0),
        "early": early,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=100)
    n = parser.parse_args(argv).requests
    storms = {
        "429+500": srv.storm(retry_after="1", error_rate=0.1, seed=3),
        "400": srv.fixed(srv.error(400, "Invalid 'messages'")),
        "401": srv.fixed(srv.error(401, "Incorrect API key provided")),
    }
    clients = {"LiteLLMPolicy": _ours, "litellm num_retries=3": _litellm_builtin}
    for client in clients.values():  # LiteLLM's first call loads lazily for seconds: keep it out of the timings
        _measure(client, srv.echo, 1, "warm-up")
    print(f"{n} concurrent requests per storm, max_retries={MAX_RETRIES} (budget {1 + MAX_RETRIES} attempts/request)")
    header = f"{'storm':<9} {'client':<22} {'ok':>5} {'attempts':>9} {'max/request':>12} {'early':>6} {'wall_s':>7}"
    print(header)
    print("-" * len(header))
    for storm_name, handler in storms.items():
        for client_name, client in clients.items():
            row = _measure(client, handler, n, f"{storm_name}-{client_name}")
            print(
                f"{storm_name:<9} {client_name:<22} {row['ok']:>5} {row['attempts']:>9} {row['max/request']:>12} "
                f"{row['early']:>6} {row['wall_s']:>7.2f}"
            )


if __name__ == "__main__":
    main()
