"""The bench's child processes do not outlive it when it is told to stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import psutil

from bench.config import PROJECT_ROOT

# A bench-like parent: one child in a session of its own (as every scenario starts them), stopped
# in a `finally`, and a long wait in between.
PARENT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from bench.procs import Proc, unwind_on_sigterm
    unwind_on_sigterm()
    child = Proc("sleeper", ["-c", "import time; time.sleep(120)"], dict(os.environ), Path(sys.argv[1]))
    try:
        print(child.pid, flush=True)  # inside the `try`: the test signals as soon as it reads this
        time.sleep(120)
    finally:
        child.stop(timeout=5)
""")


def test_a_terminated_bench_stops_the_processes_it_started(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    child_pid = None
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        child = psutil.Process(child_pid)
        # When the bench gets SIGTERM
        parent.send_signal(signal.SIGTERM)
        parent.wait(30)
        # Then its child is gone too
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:
        if parent.poll() is None:
            parent.kill()
        if child_pid is not None and psutil.pid_exists(child_pid):
            psutil.Process(child_pid).kill()
