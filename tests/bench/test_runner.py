"""The runner: outputs, resume rules, reports from real trajectories, comparison."""

import json

import pytest

from reasonloop.bench import SUITES, ExpertTurn, compare, run_bench, write_expert_jsonl
from reasonloop.bench.report import build_report
from reasonloop.bench.runner import RUN_ID, STORE_FILE, BenchConfig, config_hash
from reasonloop.errors import ConfigError
from reasonloop.trajectory.schema import PolicyStep, Reward, ToolCall, ToolResult, ToolStep, Trajectory, Usage
from reasonloop.trajectory.store import RunStore

QUIET = {"live": False}


def test_expert_run_writes_every_output(tmp_path):
    out = tmp_path / "run"
    report = run_bench("arith-chain", n=5, samples=3, out_dir=out, concurrency=4, **QUIET)
    assert report.pass_at_1 == 1.0 and report.pass_at_k == {"1": 1.0, "2": 1.0, "3": 1.0}
    assert report.episodes == 15 and report.complete and report.status_counts == {"finished": 15}
    assert report.tools["calculator"].calls == 15 * 3 and report.tools["calculator"].failures == 0
    assert report.timing["episodes_run"] == 15 and report.timing["latency_p95_s"] > 0
    for name in ("config.json", STORE_FILE, "report.json", "summary.md", "scores.png", "tools.png", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "config.json").read_text())
    assert saved["hash"] == config_hash(BenchConfig(suite="arith-chain", n=5, samples=3))
    assert json.loads((out / "report.json").read_text()) == report.model_dump(mode="json")
    assert "| pass@3 | 1.000 |" in (out / "summary.md").read_text()
    with RunStore(out / STORE_FILE) as store:
        keys = sorted((t.task_id, t.sample, t.seed) for t in store.iter_trajectories(run_id=RUN_ID))
    assert len(set(keys)) == 15 and {s for _, s, _ in keys} == {0, 1, 2} and {k[2] for k in keys} == {0, 1, 2}


def test_resume_rules(tmp_path):
    out = tmp_path / "run"
    first = run_bench("logic", n=4, out_dir=out, plots=False, **QUIET)
    with pytest.raises(ConfigError, match="already holds"):
        run_bench("logic", n=4, out_dir=out, plots=False, **QUIET)
    with pytest.raises(ConfigError, match=r"changed: difficulty, n"):
        run_bench("logic", n=5, out_dir=out, resume=True, plots=False, difficulty=3, **QUIET)
    again = run_bench("logic", n=4, out_dir=out, resume=True, plots=False, concurrency=1, **QUIET)
    assert again.timing["episodes_run"] == 0
    assert again.without_timing() == first.without_timing()
    (tmp_path / "stray").mkdir()
    RunStore(tmp_path / "stray" / STORE_FILE).close()
    with pytest.raises(ConfigError, match=r"no config\.json"):
        run_bench("logic", n=4, out_dir=tmp_path / "stray", resume=True, **QUIET)


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError):
        run_bench("logic", n=0, out_dir=tmp_path / "a", **QUIET)
    with pytest.raises(ConfigError):
        run_bench("logic", n=2, samples=0, out_dir=tmp_path / "a", **QUIET)
    with pytest.raises(ConfigError):
        run_bench("logic", n=2, concurrency=0, out_dir=tmp_path / "a", **QUIET)
    with pytest.raises(ConfigError, match="no recording file"):
        run_bench("logic", n=2, model="replay:/nonexistent.jsonl", out_dir=tmp_path / "b", **QUIET)


def test_a_policy_that_knows_nothing_scores_zero_without_crashing(tmp_path):
    other = tmp_path / "other.jsonl"
    suite = SUITES.get("lookup")
    write_expert_jsonl(suite.generate(3, seed=99), other, system_prompt=suite.system_prompt)
    report = run_bench("lookup", n=3, model=f"replay:{other}", out_dir=tmp_path / "run", plots=False, **QUIET)
    assert report.episodes == 3 and report.pass_at_1 == 0.0 and report.mean_score == 0.0
    assert report.status_counts == {"error": 3}
    assert all(r.correct == 0 and r.samples == 1 for r in report.tasks)


def _wrong_half(tmp_path, suite_name, n):
    suite = SUITES.get(suite_name)
    tasks = suite.generate(n, seed=0)
    changed = []
    for i, task in enumerate(tasks):
        if i % 2 == 0:
            wrong = str(int(task.answer) + 1)
            tasks[i] = task.model_copy(update={"expert": [*task.expert[:-1], ExpertTurn(text=f"<answer>{wrong}</answer>")]})
            changed.append(task.id)
    path = tmp_path / "half.jsonl"
    write_expert_jsonl(tasks, path, system_prompt=suite.system_prompt)
    return path, changed


def test_compare_shows_intervals_and_per_task_differences(tmp_path):
    base = tmp_path / "expert"
    run_bench("arith-chain", n=10, out_dir=base, plots=False, **QUIET)
    path, changed = _wrong_half(tmp_path, "arith-chain", 10)
    worse = tmp_path / "worse"
    report = run_bench("arith-chain", n=10, model=f"replay:{path}", out_dir=worse, plots=False, **QUIET)
    assert report.pass_at_1 == 0.5
    table = compare([base, worse], seed=3)
    assert table == compare([base, worse], seed=3)  # seeded bootstrap
    first, second = table.rows
    assert first.pass_at_1 == (1.0, 1.0, 1.0) and first.diff is None
    mean, lo, hi = second.diff
    assert mean == -0.5 and lo < -0.5 < hi <= -0.1
    assert sorted(d.task_id for d in second.task_diffs) == sorted(changed)
    assert all(d.baseline == 1.0 and d.other == 0.0 for d in second.task_diffs)
    text = table.to_markdown()
    assert "-0.500 [" in text and "5 of 10 shared tasks differ" in text
    with pytest.raises(ConfigError, match=r"no report\.json"):
        compare([tmp_path / "nothing"])


def _traj(task_id, sample, correct, tools=(), usage=None):
    steps = [PolicyStep(text="x", usage=usage or Usage())]
    steps += [ToolStep(call=ToolCall(name=name), result=ToolResult(status=status)) for name, status in tools]
    return Trajectory(run_id=RUN_ID, task_id=task_id, sample=sample, steps=steps, status="finished",
                      rewards=[Reward(name="correct", value=float(correct))], metrics={"wall_s": 1.0 + sample})


def test_report_from_mixed_trajectories():
    tasks = SUITES.get("arith").generate(2, seed=0)
    a, b = tasks[0].id, tasks[1].id
    trajs = [
        _traj(a, 0, True, [("calculator", "ok")], Usage(prompt_tokens=100, completion_tokens=10)),
        _traj(a, 1, False, [("calculator", "error"), ("calculator", "ok")]),
        _traj(a, 2, False),
        _traj(b, 0, False, [("python", "timeout")]),
        _traj(b, 1, False),
        _traj(b, 2, False),
    ]
    config = BenchConfig(suite="arith", n=2, samples=3, model="openai/gpt-4o-mini").as_dict()
    report = build_report(config=config, config_hash="h", tasks=tasks, trajectories=trajs, samples=3, wall_s=2.0)
    assert report.pass_at_1 == pytest.approx((1 / 3 + 0) / 2)
    assert report.pass_at_k["2"] == pytest.approx((2 / 3 + 0) / 2)  # 1 - C(2,2)/C(3,2)
    assert report.pass_at_k["3"] == pytest.approx(0.5)
    assert report.tools["calculator"].model_dump() == {"calls": 3, "failures": 1, "by_status": {"error": 1, "ok": 2}}
    assert report.tools["python"].failures == 1
    assert report.tokens == {"prompt": 100, "completion": 10, "cached": 0}
    assert report.cost_source == "litellm" and report.cost_usd is not None and report.cost_usd > 0
    assert report.timing["latency_mean_s"] == pytest.approx(2.0) and report.timing["episodes_per_s"] == 3.0
    assert [r.correct for r in report.tasks] == [1, 0]
    priced = [_traj(a, 0, True, usage=Usage(prompt_tokens=5, cost_usd=0.25)), _traj(a, 1, True, usage=Usage(cost_usd=0.5))]
    report = build_report(config=config, config_hash="h", tasks=tasks[:1], trajectories=priced, samples=2)
    assert report.cost_usd == 0.75 and report.cost_source == "trajectories" and report.complete


def test_live_table_counts_what_it_is_fed(tmp_path):
    from rich.console import Console

    from reasonloop.bench.live import LiveTable

    out = tmp_path / "run"
    run_bench("arith-chain", n=3, out_dir=out, plots=False, **QUIET)
    with RunStore(out / STORE_FILE) as store:
        trajs = list(store.iter_trajectories(run_id=RUN_ID))
    table = LiveTable(title="t", total=5, already_done=1, enabled=False)
    with table:
        for traj in trajs:
            for i, step in enumerate(traj.steps):
                table.on_step({"episode_id": traj.id, "node": step.node, "index": i, "step": step.model_dump(mode="json")})
            table.on_episode(traj)
    console = Console(width=200, record=True)
    console.print(table.render())
    text = console.export_text()
    assert "4/5" in text and "3/3 (100.0%)" in text and "calculator: 9 (0)" in text and "finished: 3" in text
