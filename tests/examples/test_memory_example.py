"""examples/memory_lessons.py: the experience library wins on the second pass, with numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "memory_lessons.py"


def test_memory_example_shows_the_lesson_effect(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path / "m.db")], capture_output=True, text=True,
                          timeout=300, check=False, cwd=EXAMPLE.parents[1])
    assert done.returncode == 0, done.stderr
    rows = {m.group(1).strip(): (int(m.group(2)), int(m.group(3)), int(m.group(4)))
            for m in re.finditer(r"^(no memory|experience library)\s+(\d+)/(\d+)\s+(\d+)/\d+$", done.stdout, re.M)}
    plain, library = rows["no memory"], rows["experience library"]
    n = plain[1]
    assert n == 24
    # Without memory the agent repeats its mistakes; with lessons the second pass is (near) perfect.
    assert plain[0] == plain[2] < n // 2
    assert library[2] > plain[2] + n // 3
    assert library[2] >= library[0] >= plain[0]
    lessons = re.findall(r"^lesson about (\w+): usefulness ([\d.]+)", done.stdout, re.M)
    assert {t for t, _ in lessons} == {"days_between", "convert_currency", "ship_cost"}
    assert all(float(u) > 0.8 for _, u in lessons)
