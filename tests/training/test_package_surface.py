"""The training package's public surface, and that importing it stays free of torch."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_torch_free_and_lazy_names_resolve() -> None:
    code = (
        "import sys, reasonloop.training as t\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert t.Trainer.__name__ == 'Trainer' and t.HFEngine.__name__ == 'HFEngine'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-1500:]
