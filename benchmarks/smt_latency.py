"""Z3 check latency through the checker, next to in-process z3py with a fresh Context.

    python benchmarks/smt_latency.py [--repeats 30] [--sandbox]

Each problem (SMT-LIB text) is checked ``--repeats`` times per row:

* ``in-process z3py, fresh Context`` (the anchor): ``Solver(ctx=Context())``,
  ``from_string(text)``, ``check()`` and the model in this process: the cheapest
  correct way, and the one model-written input must not take;
* ``plain subprocess z3``: ``subprocess.run([z3, -smt2, -in])`` with no validation
  and no limits: the cost of a process alone;
* ``check_smt (local runner)``: the checker: validation, rlimits, process group,
  temp dir, wall-clock deadline, reply parsing;
* ``check_smt (sandbox)``: the same through bubblewrap (with ``--sandbox``);
* ``check_z3py (child python)``: the same problem written as a z3py program.

All rows must agree on each verdict; the script checks it. Calls are interleaved
across rows (round-robin) so that load from elsewhere on the machine hits every row
alike. Printed: p50 and p90 in ms and the p50 ratio to the anchor.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable

import z3

from reasonloop.tools._smt_run import find_z3_binary
from reasonloop.tools.smt import ProcessRunner, Verdict, check_smt, check_z3py

__all__ = ["main"]

PROBLEMS = {
    "lia sat": (
        "(declare-const a Int) (declare-const b Int) (declare-const c Int)"
        "(assert (and (<= 1 a 9) (<= 1 b 9) (<= 1 c 9) (distinct a b c) (= (+ a b c) 15) (< a b)))(check-sat)",
        "from z3 import *\na, b, c = Ints('a b c')\nsolver = Solver()\n"
        "solver.add(*[And(1 <= v, v <= 9) for v in (a, b, c)], Distinct(a, b, c), a + b + c == 15, a < b)\n",
    ),
    "unsat core": (
        "(set-option :produce-unsat-cores true)(declare-const x Int)"
        "(assert (! (> x 3) :named a))(assert (! (< x 2) :named b))(check-sat)(get-unsat-core)",
        "from z3 import *\nx = Int('x')\nsolver = Solver()\nsolver.set(unsat_core=True)\n"
        "solver.assert_and_track(x > 3, 'a')\nsolver.assert_and_track(x < 2, 'b')\n",
    ),
    "bitvector sat": (
        "(declare-const x (_ BitVec 32))(assert (= (bvmul x #x00000003) #x0000002d))(assert (bvult x #x00001000))(check-sat)",
        "from z3 import *\nx = BitVec('x', 32)\nsolver = Solver()\nsolver.add(x * 3 == 45, ULT(x, 4096))\n",
    ),
    "pigeonhole 6/5 unsat": (
        "".join(f"(declare-const p{i} Int)" for i in range(6))
        + "".join(f"(assert (and (>= p{i} 0) (< p{i} 5)))" for i in range(6))
        + "(assert (distinct "
        + " ".join(f"p{i}" for i in range(6))
        + "))(check-sat)",
        "from z3 import *\nps = Ints(' '.join(f'p{i}' for i in range(6)))\nsolver = Solver()\n"
        "solver.add(*[And(p >= 0, p < 5) for p in ps], Distinct(*ps))\n",
    ),
}


def _anchor(text: str) -> str:
    solver = z3.Solver(ctx=z3.Context())
    solver.from_string(text)
    verdict = str(solver.check())
    if verdict == "sat":
        model = solver.model()
        {str(d.name()): str(model[d]) for d in model.decls()}
    return verdict


def _plain_subprocess(binary: str) -> Callable[[str], str]:
    def run(text: str) -> str:
        done = subprocess.run([binary, "-smt2", "-in"], input=text.encode(), capture_output=True, check=False)
        return done.stdout.decode().split()[0]

    return run


def _time_interleaved(fns: dict[str, Callable[[], str]], repeats: int) -> dict[str, tuple[list[float], set[str]]]:
    """Round-robin over the rows, so a burst of load on the machine hits every row alike."""
    for fn in fns.values():
        fn()  # warm up (imports, page cache)
    out: dict[str, tuple[list[float], set[str]]] = {name: ([], set()) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            verdict = fn()
            out[name][0].append((time.perf_counter() - start) * 1000)
            out[name][1].add(verdict)
    return out


def _rows(binary: str, sandbox: ProcessRunner | None) -> dict[str, Callable[[str, str], str]]:
    rows: dict[str, Callable[[str, str], str]] = {
        "in-process z3py, fresh Context": lambda text, _: _anchor(text),
        "plain subprocess z3": lambda text, _: _plain_subprocess(binary)(text),
        "check_smt (local runner)": lambda text, _: check_smt(text).verdict.value,
    }
    if sandbox is not None:
        rows["check_smt (sandbox)"] = lambda text, _: check_smt(text, runner=sandbox).verdict.value
    rows["check_z3py (child python)"] = lambda _, program: check_z3py(program).verdict.value
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--sandbox", action="store_true", help="add the bubblewrap sandbox row")
    args = parser.parse_args(argv)
    binary = find_z3_binary()
    if binary is None:
        raise SystemExit("the z3 binary was not found: pip install z3-solver")
    sandbox = None
    if args.sandbox:
        from reasonloop.tools._smt_sandbox import sandbox_runner

        sandbox = sandbox_runner()
    rows = _rows(binary, sandbox)
    print(
        f"z3 {z3.get_version_string()}, {args.repeats} repeats per cell; times in ms (p50 / p90), ratio = p50 / anchor p50"
    )
    for problem, (text, program) in PROBLEMS.items():
        print(f"\n{problem}")
        calls = {name: (lambda fn=fn, text=text, program=program: fn(text, program)) for name, fn in rows.items()}
        timed = _time_interleaved(calls, args.repeats)  # type: ignore[arg-type]
        anchor_p50 = statistics.median(next(iter(timed.values()))[0])
        expected = next(iter(timed.values()))[1]
        for name, (times, verdicts) in timed.items():
            if verdicts != expected or Verdict.ERROR.value in verdicts:
                raise SystemExit(f"{name} disagrees on {problem}: {verdicts} vs {expected}")
            p50 = statistics.median(times)
            p90 = statistics.quantiles(times, n=10)[-1] if len(times) >= 2 else p50
            print(f"  {name:32s} {p50:8.2f} / {p90:8.2f}   x{p50 / anchor_p50:6.1f}   {'/'.join(sorted(verdicts))}")


if __name__ == "__main__":
    main()
