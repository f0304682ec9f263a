"""Run every generated suite with its scripted expert, resume a run, and compare two runs.

    python examples/bench_suites.py              # works in a temporary directory
    python examples/bench_suites.py --dir out/   # keeps every run directory

Each suite's expert is a replay policy over the suite's scripted tool-using solutions;
it goes through the real ReAct agent and the real tools (calculator, sandboxed Python,
Z3, the planners' validator, a BM25 index over a generated corpus), and must score 1.0.
Then a second model (a recording with every other answer wrong) is compared with the
expert: pass@1 with bootstrap intervals and the tasks that differ.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from reasonloop.bench import SUITES, ExpertTurn, compare, run_bench, write_expert_jsonl


def main(workdir: Path) -> None:
    for name in SUITES.names():
        report = run_bench(name, n=4, model="expert", out_dir=workdir / name, cache_dir=workdir / "cache",
                           live=False, plots=False)  # fmt: skip
        calls = ", ".join(f"{tool}: {s.calls}" for tool, s in report.tools.items())
        print(f"{name:12} pass@1={report.pass_at_1:.2f} episodes={report.episodes} tool calls: {calls}")

    again = run_bench("logic", n=4, model="expert", out_dir=workdir / "logic", resume=True, live=False, plots=False)
    print(f"resumed logic: {int(again.timing['episodes_run'])} new episodes, pass@1={again.pass_at_1:.2f}")

    suite = SUITES.get("arith-chain")
    tasks = suite.generate(4, seed=0)
    for i in range(0, len(tasks), 2):  # every other answer off by one
        wrong = str(int(tasks[i].answer) + 1)
        tasks[i] = tasks[i].model_copy(update={"expert": [*tasks[i].expert[:-1], ExpertTurn(text=f"<answer>{wrong}</answer>")]})
    recording = workdir / "half-wrong.jsonl"
    write_expert_jsonl(tasks, recording, system_prompt=suite.system_prompt)
    run_bench("arith-chain", n=4, model=f"replay:{recording}", out_dir=workdir / "half-wrong", live=False, plots=False)
    print(compare([workdir / "arith-chain", workdir / "half-wrong"]).to_markdown(), end="")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="keep the run directories here")
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        main(args.dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
