"""The server engine against a loopback OpenAI-compatible server (vLLM's token-id dialect).

The server holds its own copy of a tiny model and answers like vLLM: completions with
token ids, log-probs and top-k alternatives; ``/v1/load_lora_adapter`` and
``/v1/unload_lora_adapter`` (the adapter is loaded with peft, merged into a copy of its
base, and served under its name); and the ``disk`` weight-transfer routes, which
reload a safetensors checkpoint into the served model. Every answer is computed by
the model the server holds, so a test sees whether a weight sync changed it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reasonloop.errors import ConfigError, PolicyError
from reasonloop.policy.base import Context, SamplingParams
from reasonloop.training.server_engine import ServerEngine, parse_token_id, topk_entropy
from reasonloop.training.weight_sync import WeightSyncConfig, build_weight_sync

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

GREEDY = SamplingParams(temperature=0, max_tokens=6)


def _policy(model: Any, tokenizer: Any) -> Any:
    from reasonloop.policy.hf import HFPolicy, HFPolicyConfig

    return HFPolicy(model, tokenizer, HFPolicyConfig(device="cpu", template="chatml-tags"))


def _serve(policy: Any, body: dict[str, Any]) -> dict[str, Any]:
    """A completions reply: sample with ``policy``, then top-k log-probs of each sampled position."""
    sampling = SamplingParams(temperature=body["temperature"], max_tokens=body["max_tokens"], seed=body.get("seed"),
                              stop=tuple(body.get("stop", ())))
    done = policy.complete(Context(token_ids=body["prompt"]), [], sampling)
    ids = body["prompt"] + done.token_ids
    with torch.no_grad():
        logits = policy.model(input_ids=torch.tensor([ids])).logits[0, len(body["prompt"]) - 1 : -1].float()
    logp = torch.log_softmax(logits / (body["temperature"] or 1.0), dim=-1)
    top = torch.topk(logp, body["logprobs"], dim=-1)
    return {"usage": {"prompt_tokens_details": {"cached_tokens": len(body["prompt"]) // 2}}, "choices": [{
        "text": done.text, "finish_reason": done.finish_reason,
        "logprobs": {
            "tokens": [f"token_id:{i}" for i in done.token_ids], "token_logprobs": done.logprobs,
            "top_logprobs": [{f"token_id:{int(i)}": float(v) for i, v in zip(ti, tv, strict=True)}
                             for ti, tv in zip(top.indices, top.values, strict=True)],
        },
    }]}


class LoopbackServer:
    """What a vLLM server does with its own weights, for one base model named ``toy``."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.base, self.tokenizer = model, tokenizer
        self.policies = {"toy": _policy(model, tokenizer)}
        self.calls: list[str] = []
        self.checkpoint: str | None = None

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        self.calls.append(path)
        route = getattr(self, "_" + path.strip("/").removeprefix("v1/"), None)
        return (404, "no such route") if route is None else route(body)

    def _completions(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body["model"] not in self.policies:
            return 404, f"The model `{body['model']}` does not exist."
        return 200, _serve(self.policies[body["model"]], body)

    def _load_lora_adapter(self, body: dict[str, Any]) -> tuple[int, Any]:
        name, where = body["lora_name"], Path(body["lora_path"])
        if name in self.policies:
            return 400, f"The lora adapter '{name}' has already been loaded."
        if not (where / "adapter_config.json").is_file():
            return 400, f"No adapter found at {where}"
        merged = peft.PeftModel.from_pretrained(copy.deepcopy(self.base), str(where)).merge_and_unload()
        self.policies[name] = _policy(merged, self.tokenizer)
        return 200, f"Success: LoRA adapter '{name}' added successfully."

    def _unload_lora_adapter(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body["lora_name"] not in self.policies or body["lora_name"] == "toy":
            return 404, f"The lora adapter '{body['lora_name']}' cannot be found."
        del self.policies[body["lora_name"]]
        return 200, "removed"

    def _init_weight_transfer_engine(self, body: dict[str, Any]) -> tuple[int, Any]:
        return (200, {}) if body == {"init_info": {}} else (400, "bad init_info")

    def _start_weight_update(self, body: dict[str, Any]) -> tuple[int, Any]:
        return 200, {}

    def _update_weights(self, body: dict[str, Any]) -> tuple[int, Any]:
        from safetensors.torch import load_file

        where = Path(body["update_info"]["path"])
        files = list(where.glob("*.safetensors")) if where.is_absolute() and where.is_dir() else []
        if not files:
            return 400, f"Shared-disk checkpoint path must be an absolute directory with safetensors: {where}"
        result = self.base.load_state_dict(load_file(str(files[0])), strict=False)
        if result.unexpected_keys or set(result.missing_keys) - {"lm_head.weight"}:
            return 400, f"weights do not fit: {result}"
        self.checkpoint = str(where)
        return 200, {}

    def _finish_weight_update(self, body: dict[str, Any]) -> tuple[int, Any]:
        return 200, {}

    def _reset_prefix_cache(self, body: dict[str, Any]) -> tuple[int, Any]:
        return 200, {}


@pytest.fixture()
def serve() -> Iterator[Any]:
    """``serve(LoopbackServer) -> base_url``; the servers stop after the test."""
    running: list[ThreadingHTTPServer] = []

    def start(state: LoopbackServer) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = state.handle(self.path, json.loads(raw) if raw else {})
                data = json.dumps(payload).encode() if status == 200 else str(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        running.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    for httpd in running:
        httpd.shutdown()


@pytest.fixture(scope="module")
def local() -> Any:
    from reasonloop.training.toy import toy_policy_pair

    tokenizer, model = toy_policy_pair(seed=3)
    return _policy(model, tokenizer)


def _lora_pair(seed: int = 3) -> tuple[Any, Any]:
    """A trainer-side LoRA policy and a server holding a copy of its base weights."""
    from reasonloop.training.toy import toy_policy_pair

    tokenizer, base = toy_policy_pair(seed=seed)
    server = LoopbackServer(copy.deepcopy(base), tokenizer)
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      task_type="CAUSAL_LM"))
    return _policy(model, tokenizer), server


def _train(model: Any, seed: int) -> None:
    """Stands in for an optimiser step: new values for every LoRA B matrix."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)


def _turn(engine: ServerEngine, ctx: Context) -> Any:
    return asyncio.run(engine.generate(ctx, [], GREEDY))


def test_agent_episode_through_the_server_keeps_exact_ids(local: Any, serve: Any) -> None:
    from reasonloop.agents import AgentRuntime, build_react_agent
    from reasonloop.training.toy import lookup_tool

    engine = ServerEngine(local, serve(LoopbackServer(copy.deepcopy(local.model), local.tokenizer)), "toy",
                          top_logprobs=4)
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
    stats = engine.stats
    assert stats.calls == len(steps) and stats.as_dict()["engine_off_policy"] == 0.0
    assert stats.prompt_tokens == sum(s.usage.prompt_tokens for s in steps)
    assert stats.reused_tokens == sum(s.usage.prompt_tokens // 2 for s in steps)  # the server's cached_tokens
    assert stats.computed_tokens == stats.prompt_tokens - stats.reused_tokens + sum(len(s.token_ids) for s in steps)


def test_server_failures_are_failed_turns(local: Any, serve: Any) -> None:
    url = serve(LoopbackServer(copy.deepcopy(local.model), local.tokenizer))
    ctx = Context(token_ids=local.start([{"role": "user", "content": "hi"}], []))
    broken = asyncio.run(ServerEngine(local, url, "missing").generate(ctx, [], SamplingParams(max_tokens=4)))
    assert broken.finish_reason == "error" and "404" in broken.text
    gone = asyncio.run(ServerEngine(local, "http://127.0.0.1:9/v1", "toy", timeout_s=2).generate(
        ctx, [], SamplingParams(max_tokens=4)))
    assert gone.finish_reason == "error" and "unreachable" in gone.text


def test_without_sync_the_server_keeps_its_weights_and_the_lag_is_reported(serve: Any) -> None:
    policy, server = _lora_pair()
    engine = ServerEngine(policy, serve(server), "toy")
    ctx = Context(token_ids=policy.start([{"role": "user", "content": "Code of 42?"}], []))
    before = _turn(engine, ctx)
    assert before.logprobs == pytest.approx(policy.complete(ctx, [], GREEDY).logprobs, abs=1e-5)
    for step in (1, 2):
        _train(policy.model, seed=step)
        engine.sync_weights()
    engine.stats.reset()
    stale = _turn(engine, ctx)
    assert stale.token_ids == before.token_ids and stale.logprobs == before.logprobs  # still the base weights
    assert policy.complete(ctx, [], GREEDY).logprobs != pytest.approx(before.logprobs, abs=1e-3)
    metrics = engine.stats.as_dict()
    assert engine.weight_lag == 2 and metrics["engine_weight_lag"] == 2.0 and metrics["engine_off_policy"] == 1.0
    assert server.calls == ["/v1/completions"] * 2  # nothing was pushed


def test_lora_reload_serves_the_trained_adapter(serve: Any, tmp_path: Path) -> None:
    policy, server = _lora_pair(seed=4)
    sync = build_weight_sync(WeightSyncConfig(kind="lora_reload", shared_dir=str(tmp_path), name_prefix="pol"))
    engine = ServerEngine(policy, serve(server), "toy", weight_sync=sync)
    ctx = Context(token_ids=policy.start([{"role": "user", "content": "Code of 17?"}], []))
    base = _turn(engine, ctx)
    names = []
    for step in (1, 2):
        _train(policy.model, seed=10 + step)
        engine.sync_weights()
        names.append(engine.served_model)
        served, want = _turn(engine, ctx), policy.complete(ctx, [], GREEDY)
        assert served.token_ids == want.token_ids and served.logprobs == pytest.approx(want.logprobs, abs=1e-4)
        assert served.logprobs != pytest.approx(base.logprobs, abs=1e-2)  # the served weights changed
    first, second = names
    assert first.startswith("pol-") and second.startswith("pol-") and first != second
    assert set(server.policies) == {"toy", second}  # the previous adapter was unloaded
    assert sorted(p.name for p in tmp_path.iterdir()) == [second]
    assert (tmp_path / second / "adapter_model.safetensors").is_file()
    assert server.calls.count("/v1/load_lora_adapter") == 2 and server.calls.count("/v1/unload_lora_adapter") == 1
    assert engine.weight_lag == 0 and engine.stats.syncs == 2 and engine.name == "server:toy"


def test_lora_reload_needs_an_adapter_and_reports_refusals(local: Any, serve: Any, tmp_path: Path) -> None:
    url = serve(LoopbackServer(copy.deepcopy(local.model), local.tokenizer))
    sync = build_weight_sync(WeightSyncConfig(kind="lora_reload", shared_dir=str(tmp_path)))
    with pytest.raises(PolicyError, match="has none"):
        ServerEngine(local, url, "toy", weight_sync=sync).sync_weights()
    policy, _ = _lora_pair()
    elsewhere = WeightSyncConfig(kind="lora_reload", shared_dir=str(tmp_path), server_dir="/not/mounted/here")
    engine = ServerEngine(policy, url, "toy", weight_sync=build_weight_sync(elsewhere))
    with pytest.raises(PolicyError, match="answered 400: No adapter found at /not/mounted/here"):
        engine.sync_weights()
    assert engine.served_model == "toy" and engine.weight_lag == 1  # still sampling the old weights, and saying so


def test_checkpoint_reload_loads_the_merged_weights(serve: Any, tmp_path: Path) -> None:
    policy, server = _lora_pair(seed=5)
    sync = build_weight_sync(WeightSyncConfig(kind="checkpoint_reload", shared_dir=str(tmp_path)))
    engine = ServerEngine(policy, serve(server), "toy", weight_sync=sync)
    ctx = Context(token_ids=policy.start([{"role": "user", "content": "Code of 23?"}], []))
    base = _turn(engine, ctx)
    for step in (1, 2):
        _train(policy.model, seed=20 + step)
        engine.sync_weights()
        served, want = _turn(engine, ctx), policy.complete(ctx, [], GREEDY)
        assert served.token_ids == want.token_ids and served.logprobs == pytest.approx(want.logprobs, abs=1e-4)
        assert served.logprobs != pytest.approx(base.logprobs, abs=1e-2)
    assert engine.served_model == "toy" and server.checkpoint is not None
    assert [p.name for p in tmp_path.iterdir()] == [Path(server.checkpoint).name]  # the older one was removed
    control = [c for c in server.calls if c != "/v1/completions"]
    round_trip = ["/start_weight_update", "/update_weights", "/finish_weight_update", "/reset_prefix_cache"]
    assert control == ["/init_weight_transfer_engine", *round_trip, *round_trip]


def test_token_parsing_and_topk_entropy_by_hand() -> None:
    assert parse_token_id("token_id:42") == 42
    # two tokens at p = 0.5: -2 * 0.5 * ln 0.5 = ln 2
    assert topk_entropy([-0.6931471805599453] * 2) == pytest.approx(0.6931471805599453)
    with pytest.raises(Exception, match="token_id"):
        parse_token_id("hello")


@pytest.mark.slow
def test_trainer_samples_through_the_server_and_keeps_it_on_policy(serve: Any, tmp_path: Path, warm_toy: Any) -> None:
    from reasonloop.training.batch import check_rows
    from reasonloop.training.config import load_config
    from reasonloop.training.trainer import Trainer

    server = LoopbackServer(warm_toy.model(), warm_toy.tokenizer)
    cfg = load_config({
        "seed": 0, "out_dir": str(tmp_path / "run"), "checkpoint_every": 0, "logging": {"plots": False},
        "rollout": {"mode": "grpo", "group_size": 4, "max_tokens": 12, "max_steps": 3, "engine": "server"},
        "optim": {"steps": 2, "prompts_per_step": 2, "lr": 1e-2, "lora": {"r": 4}},
        "reward": {"correctness": ["exact"], "multi_tool_bonus": 0.0},
        "server": {"base_url": serve(server), "model": "toy",
                   "weight_sync": {"kind": "lora_reload", "shared_dir": str(tmp_path / "shared")}},
    })
    trainer = Trainer(cfg, model=warm_toy.model(), tokenizer=warm_toy.tokenizer)
    history = trainer.train()
    assert trainer.engine.name == "server:toy"
    # every step sampled with the weights the trainer had: the trainer's recomputed
    # log-probs of the server's tokens match the server's, and nothing lagged
    assert all(m["engine_weight_lag"] == 0 for m in history)
    assert max(m["logprob_diff_max"] for m in history) < 1e-3
    trajs = [t for g in trainer.last_groups for t in g.trajectories]
    assert trajs and check_rows(trajs, trainer.last_rows) == []
    assert server.calls.count("/v1/load_lora_adapter") == 2 and "/v1/completions" in server.calls
    with pytest.raises(ConfigError, match=r"server\.model"):
        load_config({"rollout": {"engine": "server"}})
