"""Runs (or resumes) one benchmark; the SIGKILL test kills this process mid-run.

    python tests/bench/kill_worker.py OUT_DIR
"""

import sys

from reasonloop.bench import run_bench

SETTINGS = {"suite": "arith-chain", "n": 40, "samples": 2, "difficulty": 3, "concurrency": 2}

if __name__ == "__main__":
    run_bench(out_dir=sys.argv[1], resume=True, live=False, plots=False, **SETTINGS)
