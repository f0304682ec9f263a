"""Child process of the SIGKILL durability test: stores episodes 0..N-1 of one run.

Usage: python durability_writer.py STORE ACKS N {FULL,NORMAL}

Skips the keys the store already holds (a resumed run), and after each ``put``
returns appends the episode number to ACKS with one ``write(2)``: a line in ACKS
means the store acknowledged that episode. Prints ``ready`` once the store is open.
"""

from __future__ import annotations

import os
import random
import sys

from reasonloop.trajectory import PolicyStep, Reward, RunStore, ToolCall, ToolResult, ToolStatus, ToolStep, Trajectory

__all__ = ["RUN_ID", "episode"]

RUN_ID = "durability"


def episode(k: int) -> Trajectory:
    """Episode ``k``: a few kB of tokens and log-probs, so a put takes real time."""
    rng = random.Random(k)
    ids = [rng.randrange(100_000) for _ in range(400)]
    return Trajectory(
        run_id=RUN_ID,
        task_id=f"task-{k % 7}",
        sample=k,
        seed=None if k % 3 else k,
        steps=[
            PolicyStep(token_ids=ids, logprobs=[-rng.random() for _ in ids], text=f"episode {k} ∑"),
            ToolStep(call=ToolCall(name="python"), result=ToolResult(status=ToolStatus.OK, output=str(k))),
        ],
        status="finished",
        rewards=[Reward(name="r", value=k / 10)],
    )


def main(store_path: str, ack_path: str, n: int, synchronous: str) -> None:
    with RunStore(store_path, synchronous=synchronous) as store:  # type: ignore[arg-type]
        done = store.finished_keys(RUN_ID)
        ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        print("ready", flush=True)
        for k in range(n):
            traj = episode(k)
            if traj.key in done:
                continue
            store.put(traj)
            os.write(ack, f"{k}\n".encode())
        os.close(ack)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
