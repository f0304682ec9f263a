"""How long `import reasonloop` and `reasonloop --help` take, each in a fresh process.

Targets: import under 0.3 s, --help under 0.6 s. The anchor printed beside them is a
bare `python -c pass`, so the numbers can be read as cost over the interpreter start.

    python benchmarks/import_time.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "vllm", "z3", "litellm", "unified_planning", "transformers", "pyarrow", "langgraph")


def _time(argv: list[str], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    cli = str(Path(py).with_name("reasonloop"))
    base = _time([py, "-c", "pass"], args.repeat)
    imp = _time([py, "-c", "import reasonloop"], args.repeat)
    helps = _time([cli, "--help"], args.repeat) if Path(cli).exists() else _time(
        [py, "-m", "reasonloop.cli", "--help"], args.repeat
    )
    loaded = subprocess.run(
        [py, "-c", f"import reasonloop, sys; print([m for m in {HEAVY!r} if m in sys.modules])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"{'what':<28}{'median s':>10}{'target s':>10}{'x python -c pass':>18}")
    print(f"{'python -c pass (anchor)':<28}{base:>10.3f}{'':>10}{1.0:>18.2f}")
    print(f"{'import reasonloop':<28}{imp:>10.3f}{0.3:>10.1f}{imp / base:>18.2f}")
    print(f"{'reasonloop --help':<28}{helps:>10.3f}{0.6:>10.1f}{helps / base:>18.2f}")
    print(f"heavy modules loaded by import reasonloop: {loaded}")


if __name__ == "__main__":
    main()
