"""examples/litellm_policy.py runs end to end against the loopback OpenAI-compatible server."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "litellm_policy.py"


def _load_server() -> ModuleType:
    name = "reasonloop_tests_openai_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "policy" / "openai_server.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reasonloop_example_litellm_policy", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


srv = _load_server()
example = _load_example()


def _run(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OPENAI_API_KEY=key, PYTHONPATH=str(ROOT), LITELLM_LOCAL_MODEL_COST_MAP="True")
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _tool_reply():
    tokens = [("x", math.log(0.5), [("x", math.log(0.5)), ("y", math.log(0.5))])]
    return srv.ok(
        None,
        tool_calls=[srv.tool_call("python", {"code": "print(sum(i * i for i in range(101)))"})],
        finish_reason="tool_calls",
        logprobs=srv.logprobs_block(tokens),
    )


@pytest.mark.slow  # a fresh interpreter importing LiteLLM: 5-15 s on 2 cores
def test_example_script_against_loopback_server(tmp_path):
    key = "sk-example-0123456789abcdef"
    with srv.OpenAIServer(srv.fixed(_tool_reply())) as server:
        result = _run("--model", "openai/test-model", "--api-base", server.url, "--json", key=key)
        requests = list(server.requests)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["tool_calls"][0]["name"] == "python"
    assert out["tool_calls"][0]["arguments"] == {"code": "print(sum(i * i for i in range(101)))"}
    assert out["entropy_kind"] == "topk" and out["entropies"] == [math.log(2)] and not out["cached"]
    assert len(requests) == 1 and requests[0].authorization == f"Bearer {key}"
    assert requests[0].body["tools"][0]["function"]["name"] == "python"
    assert key not in result.stdout + result.stderr


def test_example_main_with_cache_and_errors(tmp_path, monkeypatch, capsys):
    key = "sk-example-fedcba9876543210"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    cache = str(tmp_path / "cache.sqlite")
    with srv.OpenAIServer(srv.fixed(_tool_reply())) as server:
        args = ["--model", "openai/test-model", "--api-base", server.url, "--cache", cache]
        assert example.main(args) == 0
        assert example.main(args) == 0
        assert len(server.requests) == 1  # the second run was served from the cache file
    first, second = capsys.readouterr().out.split("finish_reason:")[1:]
    assert "cached: False" in first and "cached: True" in second
    assert "tool call python(" in second and "mean top-2 entropy: 0.693" in second

    with srv.OpenAIServer(srv.fixed(srv.error(401, f"Incorrect API key provided: {key}"))) as server:
        code = example.main(["--model", "openai/test-model", "--api-base", server.url])
        attempts = len(server.requests)
    captured = capsys.readouterr()
    assert code == 2 and attempts == 1
    assert "http 401" in captured.err and "[REDACTED]" in captured.err
    assert key not in captured.out + captured.err
