"""Record episodes in a run store, list the runs, export them and import them back.

    python examples/store_and_export.py               # works in a temporary directory
    python examples/store_and_export.py --dir runs/   # keeps the files

The episodes here are built by hand (a policy step that calls a tool, the tool's
result, a final answer and a reward), the way the agent runtime records them.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from reasonloop.trajectory import (
    PolicyStep,
    Reward,
    RunStore,
    ToolCall,
    ToolResult,
    ToolStatus,
    ToolStep,
    Trajectory,
    export_jsonl,
    export_parquet,
    import_jsonl,
    import_parquet,
)

__all__ = ["main", "record_episode"]


def record_episode(run_id: str, a: int, b: int, sample: int, rng: random.Random) -> Trajectory:
    """One finished episode of "what is a*b?" answered with a Python tool call."""
    code = f"print({a}*{b})"
    call = ToolCall(name="python", arguments={"code": code})
    answer = a * b if rng.random() < 0.75 else a * b + 1  # some samples get it wrong
    sampled = [rng.randrange(32_000) for _ in range(8)]
    return Trajectory(
        run_id=run_id,
        task_id=f"mul-{a}-{b}",
        sample=sample,
        seed=sample,
        agent="react",
        model="tiny-demo",
        messages=[{"role": "user", "content": f"What is {a}*{b}?"}],
        prompt_token_ids=[1, 2, 3, 4],
        steps=[
            PolicyStep(
                node="agent",
                text=f"<python>{code}</python>",
                token_ids=sampled,
                logprobs=[-rng.random() for _ in sampled],
                entropy_kind="none",
                tool_calls=[call],
                model="tiny-demo",
            ),
            ToolStep(node="tools", call=call, result=ToolResult(status=ToolStatus.OK, output=f"{a * b}\n")),
        ],
        final_answer=str(answer),
        status="finished",
        rewards=[Reward(name="correct", value=float(answer == a * b), source="exact_match")],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    parser.add_argument("--samples", type=int, default=2, help="samples per task")
    args = parser.parse_args(argv)
    if args.dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            return _demo(Path(tmp), args.samples)
    return _demo(args.dir, args.samples)


def _demo(root: Path, samples: int) -> int:
    rng = random.Random(0)
    episodes = [
        record_episode(run, a, b, s, rng)
        for run in ("demo-a", "demo-b")
        for a, b in ((6, 7), (12, 12), (3, 5))
        for s in range(samples)
    ]
    with RunStore(root / "runs.sqlite") as store:
        new = sum(store.put(t) for t in episodes)
        again = sum(store.put(t) for t in episodes)  # a resumed run re-offers them: kept once
        print(f"stored {new} new episodes; storing them again added {again}")
        for run in store.runs():
            mean = "n/a" if run.mean_reward is None else f"{run.mean_reward:.3f}"
            print(f"run {run.run_id}: {run.episodes} episodes, mean reward {mean}, models {list(run.models)}")
        n_jsonl = export_jsonl(store, root / "demo-a.jsonl", run_id="demo-a")
        n_parquet = export_parquet(store, root / "all.parquet")
        print(f"exported {n_jsonl} episodes to JSONL and {n_parquet} to Parquet")
    with RunStore(root / "imported.sqlite") as copy:
        from_jsonl = import_jsonl(root / "demo-a.jsonl", copy)
        from_parquet = import_parquet(root / "all.parquet", copy)
        print(f"imported {from_jsonl} from JSONL, then {from_parquet} new from Parquet")
        same = [t.model_dump_json() for t in copy.iter_trajectories(run_id="demo-b")] == [
            t.model_dump_json() for t in episodes if t.run_id == "demo-b"
        ]
        print(f"round trip lossless: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
