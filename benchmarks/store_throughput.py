"""Episodes per second into the run store, next to a plain JSON Lines append.

    python benchmarks/store_throughput.py [--episodes 300] [--tokens 2000]

Each line stores the same trajectories (``--tokens`` sampled ids with log-probs,
plus a tool step). The anchor is appending ``to_json()`` lines to one file: with an
fsync per episode (as durable as ``synchronous=FULL``) and without (as durable as
``NORMAL``: survives the process, not the machine). Ratios are store / anchor.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reasonloop.trajectory import PolicyStep, Reward, RunStore, ToolCall, ToolResult, ToolStatus, ToolStep, Trajectory

__all__ = ["main"]


def _episodes(n: int, tokens: int) -> list[Trajectory]:
    rng = random.Random(0)
    out = []
    for k in range(n):
        ids = [rng.randrange(150_000) for _ in range(tokens)]
        out.append(
            Trajectory(
                run_id="bench",
                task_id=f"t{k}",
                steps=[
                    PolicyStep(token_ids=ids, logprobs=[-rng.random() for _ in ids], text="x" * tokens * 3),
                    ToolStep(call=ToolCall(name="python"), result=ToolResult(status=ToolStatus.OK, output="42")),
                ],
                status="finished",
                rewards=[Reward(name="r", value=1.0)],
            )
        )
    return out


def _jsonl(path: Path, trajs: list[Trajectory], fsync: bool) -> None:
    with open(path, "ab") as f:
        for t in trajs:
            f.write(t.to_json().encode() + b"\n")
            f.flush()
            if fsync:
                os.fsync(f.fileno())


def _store(path: Path, trajs: list[Trajectory], batch: int, **kwargs: object) -> None:
    with RunStore(path, **kwargs) as store:  # type: ignore[arg-type]
        if batch == 1:
            for t in trajs:
                store.put(t)
        else:
            for i in range(0, len(trajs), batch):
                store.put_many(trajs[i : i + batch])


def _rate(fn: Callable[[Path], None], repeats: int, n: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            fn(Path(tmp) / "out")
            best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description="run store throughput vs JSONL append")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    trajs = _episodes(args.episodes, args.tokens)
    size = len(trajs[0].to_json())
    n, r = args.episodes, args.repeats
    anchors = {
        "fsync": _rate(lambda p: _jsonl(p, trajs, fsync=True), r, n),
        "no fsync": _rate(lambda p: _jsonl(p, trajs, fsync=False), r, n),
    }
    cases = [
        ("RunStore.put, FULL", "fsync", lambda p: _store(p, trajs, 1, synchronous="FULL")),
        ("RunStore.put, NORMAL", "no fsync", lambda p: _store(p, trajs, 1, synchronous="NORMAL")),
        ("RunStore.put, FULL, uncompressed", "fsync", lambda p: _store(p, trajs, 1, compress=False)),
        ("RunStore.put_many(50), FULL", "fsync", lambda p: _store(p, trajs, 50, synchronous="FULL")),
    ]
    print(f"{n} episodes of {args.tokens} tokens ({size / 1024:.0f} KiB of JSON each), best of {r}")
    print(f"{'writer':36s} {'episodes/s':>11s} {'anchor (JSONL append)':>24s} {'ratio':>7s}")
    for name, anchor, fn in cases:
        rate = _rate(fn, r, n)
        ref = anchors[anchor]
        print(f"{name:36s} {rate:11.0f} {ref:15.0f} ({anchor:8s}) {rate / ref:7.2f}")


if __name__ == "__main__":
    main()
