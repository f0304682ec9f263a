"""The command line, driven as a user would."""

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from reasonloop.bench import arith_tasks
from reasonloop.bench.experts import expert_recording
from reasonloop.cli import app

runner = CliRunner()


def test_tool_command_prints_a_tool_result():
    result = runner.invoke(app, ["tool", "calculator", '{"expression": "6 * 7"}'])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["status"] == "ok" and payload["output"] == "42" and payload["error"] is None
    assert payload["duration_s"] >= 0


def test_tool_command_bad_input_is_a_typed_result():
    result = runner.invoke(app, ["tool", "calculator", "{not json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["status"] == "invalid_arguments"
    unknown = runner.invoke(app, ["tool", "nope", "{}"])
    assert unknown.exit_code == 2 and "unknown tool 'nope'" in unknown.output
    bad_timeout = runner.invoke(app, ["tool", "calculator", "{}", "--timeout", "0"])
    assert bad_timeout.exit_code == 2


def test_run_with_replay_then_runs_commands(tmp_path: Path):
    task = arith_tasks(1, seed=9)[0]
    recording = expert_recording(task, [{"role": "user", "content": task.prompt}])
    rec_file = tmp_path / "rec.jsonl"
    rec_file.write_text(recording.to_json() + "\n")
    store = tmp_path / "runs.sqlite"
    result = runner.invoke(
        app, ["run", task.prompt, "--model", f"replay:{rec_file}", "--tools", "calculator", "--store", str(store), "--json"]
    )
    assert result.exit_code == 0, result.output
    traj = json.loads(result.output.strip().splitlines()[-1])
    assert traj["final_answer"] == task.answer
    assert [s["kind"] for s in traj["steps"]] == ["policy", "tool", "policy"]

    listed = runner.invoke(app, ["runs", "list", "--store", str(store)])
    assert listed.exit_code == 0 and "cli" in listed.output
    shown = runner.invoke(app, ["runs", "show", traj["id"], "--store", str(store), "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["id"] == traj["id"]
    out = tmp_path / "export.parquet"
    exported = runner.invoke(app, ["runs", "export", str(out), "--store", str(store)])
    assert exported.exit_code == 0 and "exported 1" in exported.output
    other = tmp_path / "other.sqlite"
    imported = runner.invoke(app, ["runs", "import", str(out), "--store", str(other)])
    assert imported.exit_code == 0 and "imported 1" in imported.output
    again = runner.invoke(app, ["runs", "import", str(out), "--store", str(other)])
    assert "imported 0" in again.output


def test_run_reports_bad_model_strings(tmp_path: Path):
    result = runner.invoke(app, ["run", "hi", "--model", "replay:/no/such/file", "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2 and "no recording file" in result.output
    missing = runner.invoke(app, ["runs", "show", "--store", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 2 and "no run store" in missing.output


def test_demo_quick_runs_end_to_end(tmp_path: Path):
    exe = Path(sys.executable).with_name("reasonloop")
    proc = subprocess.run(
        [str(exe), "demo", "--quick", "--out", str(tmp_path / "demo")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "accuracy" in proc.stdout and "ARPO fine-tune" in proc.stdout and "hosted_vllm/" in proc.stdout
    demo = tmp_path / "demo"
    assert (demo / "runs.sqlite").exists() and (demo / "plots" / "accuracy.png").exists()
    from reasonloop.demo import QUICK

    lines = (demo / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == sum(QUICK.tasks.values())  # every held-out episode with tools, stored
    report = json.loads((demo / "report.json").read_text())
    assert set(report["accuracy_with_tools"]) == set(QUICK.tasks)
    assert report["arpo"] and report["arpo_suite"] in report["accuracy_after_arpo"]


def test_index_build_then_search_tool(tmp_path: Path):
    corpus = tmp_path / "corpus.jsonl"
    docs = [
        {"id": "d1", "title": "Zorblat", "text": "The zorblat river flows through Quentaria."},
        {"id": "d2", "title": "Mirefell", "text": "Mirefell is a mountain town famous for glass."},
    ]
    corpus.write_text("\n".join(json.dumps(d) for d in docs) + "\n{broken\n")
    out = tmp_path / "idx"
    built = runner.invoke(app, ["index", "build", str(corpus), "--out", str(out)])
    assert built.exit_code == 0, built.output
    again = runner.invoke(app, ["index", "build", str(corpus), "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    found = runner.invoke(app, ["tool", "search", '{"query": "zorblat river", "k": 1}', "--index", str(out)])
    assert found.exit_code == 0, found.output
    payload = json.loads(found.output)
    assert payload["status"] == "ok" and "d1" in payload["output"] and "d2" not in payload["output"]


def test_plan_and_validate_commands(tmp_path: Path):
    from reasonloop.planners.generators import blocksworld

    inst = blocksworld(n_blocks=4, seed=1)
    domain, problem = tmp_path / "domain.pddl", tmp_path / "problem.pddl"
    domain.write_text(inst.domain)
    problem.write_text(inst.problem)
    solved = runner.invoke(app, ["plan", str(domain), str(problem), "--timeout", "60"])
    assert solved.exit_code == 0, solved.output
    result = json.loads(solved.output)
    assert result["status"].startswith("solved") and result["plan"]
    plan_file = tmp_path / "plan.txt"
    plan_file.write_text("\n".join(result["plan"]))
    valid = runner.invoke(app, ["plan", "--validate", str(plan_file), str(domain), str(problem)])
    assert valid.exit_code == 0, valid.output
    plan_file.write_text("\n".join(result["plan"][1:]))
    invalid = runner.invoke(app, ["plan", "--validate", str(plan_file), str(domain), str(problem)])
    assert invalid.exit_code == 1
    broken = tmp_path / "broken.pddl"
    broken.write_text("(define (problem p) (:domain blocksworld")
    bad = runner.invoke(app, ["plan", str(domain), str(broken)])
    assert bad.exit_code == 2 and "invalid" in bad.output.lower()


def test_sandboxed_tools_through_the_cli():
    py = runner.invoke(app, ["tool", "python", '{"code": "x = 6 * 7\\nx"}', "--timeout", "30"])
    assert py.exit_code == 0, py.output
    assert "42" in json.loads(py.output)["output"]
    smt = '(declare-const x Int) (assert (> x 41)) (assert (< x 43)) (check-sat) (get-model)'
    z3 = runner.invoke(app, ["tool", "z3", json.dumps({"smtlib": smt})])
    assert z3.exit_code == 0, z3.output
    out = json.loads(z3.output)
    assert "sat" in out["output"] and "42" in out["output"]
    garbage = runner.invoke(app, ["tool", "z3", json.dumps({"smtlib": "garbage ((("})])
    assert garbage.exit_code == 1 and json.loads(garbage.output)["status"] == "error"


def test_memory_commands(tmp_path: Path):
    from reasonloop.memory import MemoryStore

    path = tmp_path / "memory.db"
    with MemoryStore(path, actor="ep-1") as s:
        s.put(("lessons", "alice"), "k1", {"text": "split large uploads into chunks before retrying"})
        s.put(("facts", "alice"), "k2", {"text": "Alice works in the Lyon office"})
    listed = runner.invoke(app, ["memory", "list", "--store", str(path)])
    assert listed.exit_code == 0 and "k1" in listed.output and "k2" in listed.output
    found = runner.invoke(app, ["memory", "search", "uploads chunks", "--store", str(path), "-n", "lessons"])
    assert found.exit_code == 0 and "k1" in found.output and "k2" not in found.output
    shown = runner.invoke(app, ["memory", "show", "facts.alice", "k2", "--store", str(path)])
    assert shown.exit_code == 0 and "Lyon" in shown.output
    out = tmp_path / "mem.jsonl"
    exported = runner.invoke(app, ["memory", "export", "--store", str(path), "--out", str(out)])
    assert exported.exit_code == 0 and len(out.read_text().splitlines()) == 2
    missing = runner.invoke(app, ["memory", "list", "--store", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "no memory store" in missing.output


def test_train_command_rejects_a_typo_and_trains_from_yaml(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {stpes: 3}\n")
    typo = runner.invoke(app, ["train", str(bad)])
    assert typo.exit_code == 2 and "optim.stpes: unknown key" in typo.output
    assert runner.invoke(app, ["train"]).exit_code == 2
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        f"out_dir: {tmp_path / 'run'}\ncheckpoint_every: 1\ndeterministic: true\n"
        "rollout: {mode: arpo, group_size: 2, max_tokens: 4, max_steps: 1}\n"
        "optim: {steps: 1, prompts_per_step: 1}\nlogging: {plots: false}\n"
    )
    trained = runner.invoke(app, ["train", str(cfg), "--no-progress"])
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.output[trained.output.index("{"):])["step"] == 1
