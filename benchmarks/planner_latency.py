"""Planner latency on blocksworld: Fast Downward vs pyperplan, and our wrapper's overhead.

    python benchmarks/planner_latency.py [--sizes 4 6 8 ...] [--repeats 3] [--pyperplan-timeout 10]

For each size: Fast Downward (lama-first) through unified-planning's OneshotPlanner called
directly in this process (parse + solve), the same through reasonloop's Planner (light
checks, fork of the warm worker, limits, parse + solve in the child, JSON back), and
pyperplan through reasonloop's Planner (its own timeout is ignored by pyperplan; the
wall-clock kill enforces ours). Medians over --repeats runs, interleaved so that load
on the machine hits both sides alike. "wrapper ms" is our call's time minus the child's
own parse + solve time, i.e. what the isolation costs (checks, fork, limits, JSON).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

from reasonloop.planners import Planner, PlannerConfig, PlanStatus, generate


def _direct_fd(domain: str, problem: str, timeout_s: float) -> tuple[float, int | None]:
    from unified_planning.io import PDDLReader
    from unified_planning.shortcuts import OneshotPlanner

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = PDDLReader().parse_problem_string(domain, problem)
        with OneshotPlanner(name="fast-downward") as engine:
            result = engine.solve(parsed, timeout=timeout_s)
    elapsed = time.perf_counter() - start
    return elapsed, len(result.plan.actions) if result.plan is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="planner latency on blocksworld")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14, 16, 18, 20])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0, help="Fast Downward time limit (s)")
    parser.add_argument("--pyperplan-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)

    from unified_planning.shortcuts import get_environment

    get_environment().credits_stream = None
    _direct_fd(
        "(define (domain w) (:predicates (p)) (:action a :parameters () :precondition (p) :effect (not (p))))",
        "(define (problem w) (:domain w) (:init (p)) (:goal (not (p))))",
        10,
    )  # warm imports
    header = (
        f"{'blocks':>6} {'FD direct s':>11} {'FD ours s':>9} {'ours/direct':>11} {'wrapper ms':>10} {'wrapper %':>9} "
        f"{'FD len':>6} {'pyperplan s':>11} {'pp len':>6} {'pp/FD':>7}"
    )
    print(header)
    print("-" * len(header))
    overheads, wrapper_shares = [], []
    with Planner(PlannerConfig(timeout_s=args.timeout)) as planner:
        planner.warm_up()
        for n in args.sizes:
            task = generate("blocksworld", seed=args.seed, n_blocks=n)
            direct_s, ours_s, wrapper_s, length = [], [], [], None
            for _ in range(args.repeats):
                d, length = _direct_fd(task.domain, task.problem, args.timeout)
                direct_s.append(d)
                t0 = time.perf_counter()
                ours = planner.solve(task.domain, task.problem)
                ours_s.append(time.perf_counter() - t0)
                assert ours.status.solved, ours.message
                # Everything but the child's parse + solve (the work the direct call also does).
                wrapper_s.append(ours_s[-1] - ours.timings.parse_s - ours.timings.solve_s)
            fd_direct, fd_ours = statistics.median(direct_s), statistics.median(ours_s)
            overhead = fd_ours / fd_direct - 1.0
            wrapper = statistics.median(wrapper_s)
            overheads.append(overhead)
            wrapper_shares.append(wrapper / fd_direct)
            t0 = time.perf_counter()
            pp = planner.solve(task.domain, task.problem, planner="pyperplan", timeout_s=args.pyperplan_timeout)
            pp_s = time.perf_counter() - t0
            pp_len = str(len(pp.plan)) if pp.solved else pp.status.value
            pp_time = f"{pp_s:.3f}" if pp.status is not PlanStatus.TIMEOUT else f">{args.pyperplan_timeout:g}"
            print(
                f"{n:>6} {fd_direct:>11.3f} {fd_ours:>9.3f} {overhead + 1:>10.3f}x {wrapper * 1000:>10.1f} {wrapper / fd_direct:>9.1%} {length!s:>6} {pp_time:>11} {pp_len:>6} {pp_s / fd_ours:>6.1f}x"
            )
    print(
        f"\nwrapper overhead vs unified-planning direct (target: under 10%): end-to-end median "
        f"{statistics.median(overheads):+.1%} (noisy on a shared machine); wrapper's own time, median "
        f"{statistics.median(wrapper_shares):.1%} of the direct call"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
