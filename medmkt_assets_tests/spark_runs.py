"""The Spark Connect and standalone cluster runs of test_spark_remote.py.

Each run is graph_run.py in a process of its own (the demo world's assets, the cluster run its
quality gates too, then a sensor batch), against a Spark Connect server and a standalone cluster of
two one-core workers, all on 127.0.0.1; the two go side by side. (Started in the background at the
start of the suite instead, even at a lower CPU priority, they slowed the other tests two- to
threefold on this two-core machine and the suite took longer: measured on 2026-12-07.)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from medmkt_assets_tests.conftest import TEST_KEY

RUN_TIMEOUT = 2400  # seconds from the start; a run past it is killed and its test fails with its log


class RemoteRuns:
    """The two runs with their servers: `start`, then `finish` (waits, gives each run's result),
    `stop` (idempotent: kills what still runs, stops the servers)."""

    def __init__(self, root: Path):
        from medmkt_assets.spark_cluster import ConnectServer, StandaloneCluster

        self.root = root
        self.server = ConnectServer(root / "connect" / "server", metastore=root / "connect" / "metastore")
        self.cluster = StandaloneCluster(root / "cluster" / "daemons", workers=2)
        self.processes: dict[str, subprocess.Popen] = {}
        self.started = 0.0
        self.cluster_state: dict | None = None

    def start(self, source: Path) -> "RemoteRuns":
        self.started = time.time()
        try:
            self.server.start()
            self.cluster.start()
            self.processes = {
                "connect": self._graph(source, self.root / "connect" / "run", "--remote", self.server.url),
                "cluster": self._graph(source, self.root / "cluster" / "run", "--master", self.cluster.url,
                                       "--checks")}
        except BaseException:
            self.stop()
            raise
        return self

    def finish(self) -> dict:
        """Wait for both runs; {"connect": .., "cluster": ..}, each its result.json with where it lives."""
        results = {name: self._wait(process, self.root / name / "run") for name, process in self.processes.items()}
        self.cluster_state = self.cluster.state()
        self.stop()  # the metastores are free again for the readers of the tests
        return {
            "connect": {**results["connect"], "root": self.root / "connect",
                        "metastore": self.root / "connect" / "metastore",
                        "lakehouse": self.root / "connect" / "run" / "lakehouse"},
            "cluster": {**results["cluster"], "root": self.root / "cluster", "state": self.cluster_state,
                        "metastore": self.root / "cluster" / "run" / "metastore",
                        "lakehouse": self.root / "cluster" / "run" / "lakehouse"},
        }

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.server.stop()
        self.cluster.stop()

    def _graph(self, source: Path, root: Path, *spark_args: str) -> subprocess.Popen:
        """graph_run.py in a process group of its own (its output in root/graph_run.log)."""
        root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MEDMKT_TEST_PSEUDONYM_KEY": TEST_KEY, "PYSPARK_PYTHON": sys.executable,
               "SPARK_LOCAL_IP": "127.0.0.1"}
        with (root / "graph_run.log").open("w") as log:
            process = subprocess.Popen([sys.executable, "-m", "medmkt_assets_tests.graph_run", "--source",
                                        str(source), "--root", str(root), *spark_args], env=env, stdout=log,
                                       stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent,
                                       start_new_session=True)
        return process

    def _wait(self, process: subprocess.Popen, root: Path) -> dict:
        """A graph_run.py's result.json, with the end of its output when it has none."""
        try:
            process.wait(timeout=max(1.0, self.started + RUN_TIMEOUT - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        result, log = root / "result.json", root / "graph_run.log"
        assert process.returncode == 0 and result.is_file(), log.read_text()[-5000:]
        return {**json.loads(result.read_text()), "warehouse": root / "warehouse.duckdb", "log": log}
