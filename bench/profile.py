"""Sampling a running process with py-spy: a flame graph for people, hotspots for the report.

Two samplers run side by side (``--nonblocking``: the target is never paused). One writes an
SVG flame graph of CPU time. The other writes collapsed stacks: of CPU time for a CPU-bound
process, or of wall time (``--idle --threads``) for a latency-bound one, where the question is
what the process waits for. From those the top functions are counted:

- ``self``: the innermost frame (idle frames such as ``select`` left out), % of samples;
- ``inclusive``: every wanotify function on the stack, % of samples (CPU), or, for wall time,
  % of the main thread's samples, i.e. of elapsed time (worker threads run one job at a time).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PRODUCT_DIRS = ("consumers/", "shared/", "producers/", "ops/")
ENTRY_POINTS = ("ops/cli/",)  # on every stack of a wanotify process: not a hotspot
IDLE_LEAVES = ("EpollSelector.select", "_worker (", "Condition.wait", "Event.wait", "Thread._wait_for_tstate_lock")


def py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


class Profiler:
    """``start()`` both samplers for ``seconds``; ``finish()`` waits and returns the hotspots."""

    def __init__(self, pid: int, seconds: int, out_dir: Path, name: str, *, wall: bool = False) -> None:
        self.svg = out_dir / f"{name}.svg"
        self.raw = out_dir / f"{name}.{'wall' if wall else 'cpu'}.collapsed.txt"
        self.seconds = seconds
        self.wall = wall
        self._pid = pid
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> Profiler:
        exe = py_spy()
        if exe is None:
            return self
        common = ["record", "--pid", str(self._pid), "-d", str(self.seconds), "-r", "100", "--nonblocking"]
        raw = ["--format", "raw", "-o", str(self.raw), *(["--idle", "--threads"] if self.wall else [])]
        for extra in (["-o", str(self.svg)], raw):
            self._procs.append(subprocess.Popen([exe, *common, *extra], stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL))
        return self

    def finish(self) -> dict[str, Any]:
        for proc in self._procs:
            try:
                proc.wait(self.seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not self._procs or not self.raw.exists():
            return {"error": "py-spy not available or no samples"}
        return {"svg": self.svg.name, "stacks": self.raw.name, "kind": "wall" if self.wall else "cpu",
                **hotspots(self.raw.read_text(), wall=self.wall)}


def hotspots(collapsed: str, *, wall: bool = False, top: int = 12) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = main = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        raw_frames = [f for f in stack.split(";") if f]
        if raw_frames and raw_frames[0].startswith("thread ") and "MainThread" in raw_frames[0]:
            main += n
        frames = [_function(f) for f in raw_frames if not f.startswith(("thread ", "process "))]
        if frames and not frames[-1].startswith(IDLE_LEAVES):
            own[frames[-1]] += n
        for frame in set(frames):
            if any(d in frame for d in PRODUCT_DIRS) and not any(e in frame for e in ENTRY_POINTS):
                inclusive[frame] += n
    base = main if wall and main else total
    if not base:
        return {"samples": 0, "self": [], "inclusive": []}

    def share(counter: Counter[str], of: int) -> list[dict[str, Any]]:
        return [{"function": f, "percent": round(100 * n / of, 1)} for f, n in counter.most_common(top)]

    return {"samples": total, "wall_samples": main if wall else None, "self": share(own, base),
            "inclusive": share(inclusive, base)}


def _function(frame: str) -> str:
    """``send (consumers/providers/meta.py:42)`` -> ``send (consumers/providers/meta.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name
