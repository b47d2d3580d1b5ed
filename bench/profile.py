"""Optional: sample ingest and the order core with py-spy during the flood phase.

Only the thread holding the GIL is sampled (``--gil``): the view of where Python spends CPU,
without threads that merely wait (fsync, queue gets) inflating the picture.

py-spy is not a dependency (``pip install py-spy``); without it ``--profile`` says so and the
run goes on. The raw collapsed stacks are kept, and ``top_functions`` (pure) reads them.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

__all__ = ["Profiler", "top_functions"]


class Profiler:
    """``py-spy record`` attached to some processes; ``stop()`` writes ``<name>.txt`` files."""

    def __init__(self, out_dir: Path, rate: int = 200) -> None:
        self.out_dir = out_dir
        self.rate = rate
        self.binary = shutil.which("py-spy")
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, targets: dict[str, int]) -> None:
        """Start sampling each ``name -> pid``; raises FileNotFoundError without py-spy."""
        if self.binary is None:
            raise FileNotFoundError("py-spy is not installed (pip install py-spy)")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in targets.items():
            self._procs[name] = subprocess.Popen(
                [
                    self.binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(self.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--gil",
                    "--output",
                    str(self.path(name)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def path(self, name: str) -> Path:
        return self.out_dir / f"{name}.txt"

    def stop(self) -> dict[str, Path]:
        """Stop sampling (SIGINT makes py-spy write its file); return the files written."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self._procs.values():
            proc.wait(timeout=30)
        written = {n: self.path(n) for n in self._procs if self.path(n).exists()}
        self._procs.clear()
        return written


def top_functions(collapsed: str, limit: int = 15) -> list[tuple[str, float, float]]:
    """``(function, self %, inclusive %)`` of the busiest functions in collapsed stacks
    (``frame;frame;frame COUNT`` lines), by self time."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return []
    return [(f, 100 * n / total, 100 * inclusive[f] / total) for f, n in own.most_common(limit)]
