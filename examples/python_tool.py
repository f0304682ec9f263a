"""Run model-written Python in the sandboxed interpreter: sessions, forks, limits, the tool.

    python examples/python_tool.py

A session keeps variables between calls and shows the last expression like a notebook;
a fork continues independently; an exception comes back with a traceback trimmed to the
cell; a runaway loop hits the wall-clock limit and the session restarts; and the
``python`` tool runs inside a Toolset, one session per episode.
"""

from __future__ import annotations

import asyncio

from reasonloop.tools.base import Toolset
from reasonloop.tools.python import PythonConfig, PythonSession, python_tool
from reasonloop.tools.sandbox import Sandbox
from reasonloop.trajectory.schema import ToolCall

__all__ = ["main"]


def main() -> None:
    config = PythonConfig(timeout_s=5)
    reason = Sandbox(config.sandbox).unavailable_reason()
    if reason is not None:
        print(f"sandbox unavailable: {reason}")
        return
    with PythonSession.open(config) as session:
        session.run("import sympy as sp\nx = sp.Symbol('x')\nroots = sp.solve(x**2 - 5*x + 6, x)")
        print("roots:", session.run("roots").display)
        branch = session.fork()
        branch.run("roots = [r * 10 for r in roots]")
        print("fork:", branch.run("roots").display, "original:", session.run("roots").display)
        branch.close()
        error = session.run("def mean(xs):\n    return sum(xs) / len(xs)\nmean([])")
        print("error:", error.traceback.strip().splitlines()[-1] if error.traceback else None)
        slow = session.run("while True:\n    pass", timeout_s=0.5)
        print("loop:", slow.status.value, "state lost:", slow.state_lost)

    async def episode() -> str:
        with Toolset([python_tool(config)]).open("demo") as tools:
            await tools.call(ToolCall(id="1", name="python", arguments={"code": "import numpy as np\na = np.arange(10)"}))
            result = await tools.call(ToolCall(id="2", name="python", arguments={"code": "print(a.sum())\na.mean()"}))
            return result.to_observation()

    print("tool:", asyncio.run(episode()).replace("\n", " | "))


if __name__ == "__main__":
    main()
