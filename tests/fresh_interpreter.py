"""Which heavy modules a piece of code pulls in, run in a fresh interpreter (this one has them all)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable


def modules_loaded_by(code: str, watched: Iterable[str]) -> list[str]:
    """Run `code` in a new Python, then list the `watched` modules present in its sys.modules."""
    report = f"import sys\nprint(','.join(m for m in {tuple(watched)!r} if m in sys.modules))\n"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], capture_output=True, text=True, check=True
    )
    return [m for m in done.stdout.strip().split(",") if m]
