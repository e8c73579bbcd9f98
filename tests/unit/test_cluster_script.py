"""``scripts/cluster.sh`` trusts only its own Erlang VMs: a pid file left by a run that died (the
machine rebooted, the pid now names something else) is neither reported as a node nor killed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.cluster import SCRIPT


def _script(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], env={"PATH": "/usr/bin:/bin", "CLUSTER_DIR": str(directory)},
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_a_stale_pid_file_naming_another_process_is_not_a_node_and_is_not_killed(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        for node in (1, 2, 3):
            (tmp_path / f"node{node}").mkdir()
            (tmp_path / f"node{node}" / "pid").write_text(str(bystander.pid))

        assert _script(tmp_path, "pid", "1").returncode != 0
        assert _script(tmp_path, "stop").returncode == 0

        assert bystander.poll() is None, "cluster.sh stop killed a process that is not one of its nodes"
        assert not tmp_path.exists(), "stop leaves no stale data behind"
    finally:
        bystander.kill()
        bystander.wait()
