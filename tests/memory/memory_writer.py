"""Child process of the memory durability tests.

Usage: python memory_writer.py STORE WRITER N ACKS

Writes items ``WRITER-0 .. WRITER-(N-1)`` into ``("load", WRITER)`` one transaction
each, increments the shared counter ``("load", "shared")/"counter"`` after each, and
appends ``k`` to ACKS (one ``write(2)``) once the store has acknowledged item ``k``.
"""

from __future__ import annotations

import os
import sys

from reasonloop.memory import MemoryStore

__all__ = ["main"]


def _bump(old: dict[str, int] | None) -> dict[str, int]:
    return {"n": (old or {"n": 0})["n"] + 1}


def main(path: str, writer: str, n: int, acks: str) -> None:
    ack = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with MemoryStore(path, actor=writer) as store:
        print("ready", flush=True)
        for k in range(n):
            text = f"writer {writer} item {k} " + "payload " * 40
            store.put(("load", writer), f"{writer}-{k}", {"text": text, "k": k})
            store.update(("load", "shared"), "counter", _bump)
            os.write(ack, f"{k}\n".encode())
    os.close(ack)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
