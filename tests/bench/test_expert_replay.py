"""The scripted experts replayed through the real agent and the real tools (via the runner)
reproduce their answers, and every tool result agrees with what the expert did next."""

from fractions import Fraction

from reasonloop.bench import SUITES, run_bench
from reasonloop.bench.logic import answer_from_model
from reasonloop.bench.runner import RUN_ID, STORE_FILE
from reasonloop.trajectory.store import RunStore


def replay(suite: str, tmp_path, n: int = 6, difficulty: int | None = None):
    report = run_bench(suite, n=n, model="expert", out_dir=tmp_path / suite, concurrency=3, live=False, plots=False,
                       difficulty=difficulty, cache_dir=tmp_path / "cache")
    with RunStore(tmp_path / suite / STORE_FILE) as store:
        trajs = sorted(store.iter_trajectories(run_id=RUN_ID), key=lambda t: t.task_id)
    tasks = {t.id: t for t in SUITES.get(suite).generate(n, seed=0, difficulty=difficulty)}
    assert report.pass_at_1 == 1.0 and report.episodes == n and report.status_counts == {"finished": n}
    for traj in trajs:
        task = tasks[traj.task_id]
        assert traj.final_answer is not None and task.verify(traj.final_answer).correct
        assert [s.call.name for s in traj.tool_steps()] == [n for turn in task.expert for n, _ in turn.tool_calls]
        assert all(s.result.ok for s in traj.tool_steps()), [s.result.error for s in traj.tool_steps()]
    return [(tasks[t.task_id], t) for t in trajs]


def test_arith_chain(tmp_path):
    for task, traj in replay("arith-chain", tmp_path, difficulty=3):
        outputs = [Fraction(s.result.output) for s in traj.tool_steps()]
        assert outputs == [Fraction(v) for v in task.metadata["values"]]


def test_arith_py_runs_in_the_sandbox(tmp_path):
    for task, traj in replay("arith-py", tmp_path, n=4):
        (step,) = traj.tool_steps()
        assert Fraction(step.result.output.strip()) == Fraction(task.answer)


def test_logic_model_gives_the_answer(tmp_path):
    for task, traj in replay("logic", tmp_path, difficulty=2):
        (step,) = traj.tool_steps()
        assert step.result.data["verdict"] == "sat"
        assert answer_from_model(task, step.result.data["model"]) == task.answer


def test_lookup_each_search_finds_the_next_hop(tmp_path):
    for task, traj in replay("lookup", tmp_path, difficulty=3):
        outputs = [s.result.output for s in traj.tool_steps()]
        assert len(outputs) == 3
        for output, fact in zip(outputs, task.metadata["hops"], strict=True):
            assert fact in output
    assert (tmp_path / "cache" / "lookup-s0-b1" / "index").is_dir()


def test_planning_plans_validate(tmp_path):
    for _, traj in replay("planning", tmp_path, n=4, difficulty=2):
        (step,) = traj.tool_steps()
        assert step.result.output.startswith("valid:"), step.result.output


def test_arith(tmp_path):
    for task, traj in replay("arith", tmp_path, n=4):
        assert traj.tool_steps()[0].result.output == task.answer
