"""The server engine against a loopback OpenAI-compatible completions endpoint (vLLM's token-id dialect).

The endpoint is served by a tiny local model, so the ids, log-probs and top-k
alternatives it returns are real samples; a vLLM/SGLang server speaks the same JSON.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reasonloop.policy.base import Context, SamplingParams
from reasonloop.training.server_engine import ServerEngine, parse_token_id, topk_entropy

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def local() -> Any:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig
    from reasonloop.training.toy import toy_policy_pair

    tokenizer, model = toy_policy_pair(seed=3)
    return HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu", template="chatml-tags"))


def _serve(local: Any, body: dict[str, Any]) -> dict[str, Any]:
    """A completions reply: sample with the local model, then top-k log-probs of each sampled position."""
    sampling = SamplingParams(temperature=body["temperature"], max_tokens=body["max_tokens"], seed=body.get("seed"),
                              stop=tuple(body.get("stop", ())))
    done = local.complete(Context(token_ids=body["prompt"]), [], sampling)
    ids = body["prompt"] + done.token_ids
    with torch.no_grad():
        logits = local.model(input_ids=torch.tensor([ids])).logits[0, len(body["prompt"]) - 1 : -1].float()
    logp = torch.log_softmax(logits / (body["temperature"] or 1.0), dim=-1)
    top = torch.topk(logp, body["logprobs"], dim=-1)
    return {"choices": [{
        "text": done.text, "finish_reason": done.finish_reason,
        "logprobs": {
            "tokens": [f"token_id:{i}" for i in done.token_ids], "token_logprobs": done.logprobs,
            "top_logprobs": [{f"token_id:{int(i)}": float(v) for i, v in zip(ti, tv, strict=True)}
                             for ti, tv in zip(top.indices, top.values, strict=True)],
        },
    }]}


@pytest.fixture(scope="module")
def server(local: Any) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body["model"] == "broken":
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"engine crashed")
                return
            data = json.dumps(_serve(local, body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_agent_episode_through_the_server_keeps_exact_ids(local: Any, server: str) -> None:
    from reasonloop.agents import AgentRuntime, build_react_agent
    from reasonloop.training.toy import lookup_tool

    engine = ServerEngine(local, server, "toy", top_logprobs=4)
    agent = build_react_agent(engine, [lookup_tool()], sampling=SamplingParams(max_tokens=8), max_steps=2)

    async def go() -> Any:
        async with AgentRuntime(agent) as runtime:
            return await runtime.run("Code of 42?", task_id="t", seed=5)

    traj = asyncio.run(go())
    steps = traj.policy_steps()
    assert steps and all(s.entropy_kind == "topk" and s.top_k == 4 for s in steps)
    first = steps[0]
    want = local.complete(Context(token_ids=traj.prompt_token_ids), [lookup_tool().spec], SamplingParams(
        max_tokens=8, seed=first.sampling["seed"]))
    assert first.token_ids == want.token_ids and first.logprobs == pytest.approx(want.logprobs, abs=1e-6)
    assert first.entropies and all(0 <= e <= 4 / 2.718281828 for e in first.entropies)  # each -p ln p <= 1/e
    assert traj.token_ids()[: len(traj.prompt_token_ids)] == traj.prompt_token_ids


def test_server_failures_are_failed_turns(local: Any, server: str) -> None:
    ctx = Context(token_ids=local.start([{"role": "user", "content": "hi"}], []))
    broken = asyncio.run(ServerEngine(local, server, "broken").generate(ctx, [], SamplingParams(max_tokens=4)))
    assert broken.finish_reason == "error" and "500" in broken.text
    gone = asyncio.run(ServerEngine(local, "http://127.0.0.1:9/v1", "toy", timeout_s=2).generate(
        ctx, [], SamplingParams(max_tokens=4)))
    assert gone.finish_reason == "error" and "unreachable" in gone.text


def test_token_parsing_and_topk_entropy_by_hand() -> None:
    assert parse_token_id("token_id:42") == 42
    # two tokens at p = 0.5: -2 * 0.5 * ln 0.5 = ln 2
    assert topk_entropy([-0.6931471805599453] * 2) == pytest.approx(0.6931471805599453)
    with pytest.raises(Exception, match="token_id"):
        parse_token_id("hello")
