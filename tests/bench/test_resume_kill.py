"""SIGKILL the runner mid-run ten times, resume each time: the final report equals an
uninterrupted run's (timing aside), with no episode lost or counted twice."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reasonloop.bench import run_bench
from reasonloop.bench.comparison import load_report
from reasonloop.bench.runner import RUN_ID, STORE_FILE
from reasonloop.trajectory.store import RunStore

WORKER = Path(__file__).with_name("kill_worker.py")
sys.path.insert(0, str(WORKER.parent))
from kill_worker import SETTINGS  # noqa: E402

TOTAL = SETTINGS["n"] * SETTINGS["samples"]


def stored(out: Path) -> int:
    if not (out / STORE_FILE).exists():
        return 0
    with RunStore(out / STORE_FILE) as store:
        return store.count(RUN_ID)


def start(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen([sys.executable, str(WORKER), str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def kill_after_progress(out: Path, rng: random.Random) -> tuple[bool, int, int]:
    """Start the worker, SIGKILL it once it has stored at least one more episode.

    Returns (killed while running, episodes before, episodes after).
    """
    before = stored(out)
    proc = start(out)
    deadline = time.monotonic() + 60
    while stored(out) <= before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.03))
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return running, before, stored(out)


@pytest.mark.slow
def test_sigkill_ten_times_then_resume(tmp_path):
    baseline = run_bench(out_dir=tmp_path / "baseline", live=False, plots=False, **SETTINGS)
    assert baseline.complete and baseline.pass_at_1 == 1.0

    out, rng, kills = tmp_path / "killed", random.Random(7), 0
    counts = [0]
    while kills < 10:
        running, before, after = kill_after_progress(out, rng)
        assert after >= before  # a kill never loses a committed episode
        counts.append(after)
        kills += running and after < TOTAL
        assert after < TOTAL or kills == 10, f"the run finished after only {kills} kills; slow the worker down"
    assert counts[-1] < TOTAL  # the last kill left work to do
    print("stored episodes after each kill:", counts[1:])

    proc = start(out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    resumed = load_report(out)
    assert resumed.without_timing() == baseline.without_timing()
    with RunStore(out / STORE_FILE) as store:
        trajs = list(store.iter_trajectories(run_id=RUN_ID))
    assert len(trajs) == TOTAL == len({t.key for t in trajs})  # none lost, none twice
    assert all(t.status == "finished" and t.rewards[0].value == 1.0 for t in trajs)
