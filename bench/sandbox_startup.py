"""Sandbox start-up cost per shell call: ``true`` through ``run_sandboxed`` against a bare ``subprocess.run``.

Both are measured in the same run, so the ratio is comparable across machines.
Run: ``.venv/bin/python bench/sandbox_startup.py [N]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.config import Settings  # noqa: E402
from tools.sandbox import bwrap_path, run_sandboxed  # noqa: E402


def _timed(fn, n: int) -> list[float]:  # noqa: ANN001
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(n: int = 30) -> None:
    if bwrap_path() is None:
        raise SystemExit("bubblewrap (bwrap) is not installed: nothing to measure")
    settings = Settings(_env_file=None)
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)

        def sandboxed() -> None:
            result = run_sandboxed(["true"], workspace, settings, 10)
            assert result.exit_code == 0 and result.sandboxed, result

        def plain() -> None:
            subprocess.run(["true"], check=True)

        sandboxed(), plain()  # warm caches before measuring
        base = _timed(plain, n)
        sand = _timed(sandboxed, n)
    b, s = statistics.median(base), statistics.median(sand)
    print(f"N={n} calls of `true`")
    print(f"plain subprocess.run : median {b:7.2f} ms  (p90 {statistics.quantiles(base, n=10)[-1]:.2f} ms)")
    print(f"run_sandboxed (bwrap): median {s:7.2f} ms  (p90 {statistics.quantiles(sand, n=10)[-1]:.2f} ms)")
    print(f"sandbox start-up cost: {s - b:.2f} ms per call, ratio {s / b:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
