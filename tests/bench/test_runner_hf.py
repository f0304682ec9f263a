"""The runner with a real (tiny, random-init, built here) local model: tokens are counted,
a model that knows nothing scores 0, and nothing crashes."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from reasonloop.bench import run_bench
from reasonloop.bench.runner import RUN_ID, STORE_FILE
from reasonloop.trajectory.store import RunStore


@pytest.mark.slow
def test_tiny_model_benchmark(tmp_path):
    from reasonloop.policy.tiny_model import build_tiny_model, build_tiny_tokenizer, save_tiny

    tokenizer = build_tiny_tokenizer()
    path = save_tiny(build_tiny_model(tokenizer, max_positions=2048, seed=3), tokenizer, tmp_path / "tiny")
    out = tmp_path / "run"
    options = {"n": 2, "samples": 2, "model": f"hf:{path}", "max_tokens": 8, "max_steps": 2, "temperature": 1.0,
               "out_dir": out, "live": False, "plots": False, "concurrency": 2}  # fmt: skip
    report = run_bench("arith", **options)
    assert report.episodes == 4 and report.pass_at_1 == 0.0 and report.pass_at_k["2"] == 0.0
    assert sum(report.status_counts.values()) == 4
    with RunStore(out / STORE_FILE) as store:
        trajs = list(store.iter_trajectories(run_id=RUN_ID))
    sampled = sum(len(s.token_ids) for t in trajs for s in t.policy_steps())
    assert sampled > 0 and report.tokens["completion"] == sum(t.usage.completion_tokens for t in trajs) > 0
    assert report.tokens["prompt"] > 0 and report.cost_usd is None and report.cost_source == "unknown"
    assert {t.seed for t in trajs} == {0, 1}
    again = run_bench("arith", resume=True, **options)
    assert again.timing["episodes_run"] == 0 and again.without_timing() == report.without_timing()
