"""Spark servers started from the PySpark installation, bound to 127.0.0.1 on free ports: the Spark
Connect server (sbin/start-connect-server.sh) and a standalone cluster (a master and workers of one
core each, through bin/spark-class: the pip package has no start-master.sh). Each process runs in
its own process group, stopped by `stop()`; the tests call it in a fixture finalizer.

`make spark-cluster` (`python -m medmkt_assets.spark_cluster start`) starts a cluster for a
newcomer and prints its master URL and web UI; `make spark-cluster-stop` stops it (the process
groups are kept in data/spark-cluster/cluster.json).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from medmkt_assets.lib.engine.spark.session import metastore_conf

STATE = Path("data/spark-cluster")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_home() -> Path:
    """The Spark distribution PySpark ships (bin/, sbin/, jars/)."""
    import pyspark

    return Path(pyspark.__file__).parent


def spark_env(logs: Path) -> dict[str, str]:
    """The environment of a Spark daemon: Python workers in this interpreter (medmkt importable),
    logs and pid files under `logs`."""
    logs.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "SPARK_HOME": str(spark_home()), "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOG_DIR": str(logs), "SPARK_PID_DIR": str(logs), "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_DIRS": str(logs / "local"), "SPARK_CONF_DIR": str(logs / "conf")}


def wait_port(port: int, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}): {log.read_text()[-3000:] if log else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f}s")


class _Daemons:
    """Processes started in their own process groups, stopped together."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.processes: list[subprocess.Popen] = []

    def _start(self, command: list[str], name: str) -> tuple[subprocess.Popen, Path]:
        log = self.folder / f"{name}.log"
        process = subprocess.Popen(command, env=spark_env(self.folder), stdout=log.open("w"),
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=self.folder)
        self.processes.append(process)
        return process, log

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()

    @property
    def groups(self) -> list[int]:
        return [process.pid for process in self.processes]


class ConnectServer(_Daemons):
    """The Spark Connect server, its driver on local[2], its catalog an embedded Derby metastore."""

    def __init__(self, folder: Path, metastore: Path, master: str = "local[2]"):
        super().__init__(folder)
        self.port = free_port()
        self.url = f"sc://127.0.0.1:{self.port}"
        confs = {**metastore_conf(str(metastore)), "spark.sql.catalogImplementation": "hive",
                 "spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": str(self.port),
                 "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1", "spark.ui.enabled": "false"}
        self.command = [str(spark_home() / "sbin" / "start-connect-server.sh"), "--wait", "--master", master,
                        "--driver-memory", "2g"] + [arg for key, value in confs.items() for arg in ("--conf", f"{key}={value}")]

    def start(self) -> "ConnectServer":
        process, log = self._start(self.command, "connect-server")
        wait_port(self.port, 180, process, log)
        return self


class StandaloneCluster(_Daemons):
    """A standalone master and `workers` workers of one core each, on 127.0.0.1."""

    def __init__(self, folder: Path, workers: int = 2, worker_memory: str = "2g"):
        super().__init__(folder)
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.ui = f"http://127.0.0.1:{self.ui_port}"
        self.workers, self.worker_memory = workers, worker_memory

    def start(self) -> "StandaloneCluster":
        spark_class = str(spark_home() / "bin" / "spark-class")
        process, log = self._start([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                    "--port", str(self.port), "--webui-port", str(self.ui_port)], "master")
        wait_port(self.port, 120, process, log)
        for n in range(self.workers):
            work = self.folder / f"worker-{n}"
            work.mkdir(parents=True, exist_ok=True)
            self._start([spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                         "--cores", "1", "--memory", self.worker_memory, "--work-dir", str(work),
                         "--webui-port", str(free_port()), self.url], f"worker-{n}")
        self._wait_workers(120)
        return self

    def state(self) -> dict:
        """The master's view (its web UI's /json/): workers, active and completed applications."""
        with urllib.request.urlopen(f"{self.ui}/json/", timeout=5) as response:
            return json.load(response)

    def alive_workers(self) -> int:
        return sum(1 for worker in self.state().get("workers", []) if worker.get("state") == "ALIVE")

    def _wait_workers(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.alive_workers() >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError(f"{self.workers} workers did not register with {self.url} within {timeout:.0f}s")


def stop_groups(groups: list[int], grace: float = 30) -> None:
    """Stop process groups started by an earlier `start` (SIGTERM, then SIGKILL after `grace` seconds)."""
    for group in groups:
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.time() + grace
    for group in groups:
        while time.time() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        else:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="A standalone Spark cluster on this machine (127.0.0.1).")
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="2g")
    args = parser.parse_args(argv)
    state = STATE / "cluster.json"
    if args.action == "stop":
        if not state.is_file():
            print("no cluster started by `make spark-cluster` is running")
            return
        stop_groups(json.loads(state.read_text())["process_groups"])
        state.unlink()
        print("stopped")
        return
    if state.is_file():
        sys.exit(f"a cluster is already running ({json.loads(state.read_text())['master']}): make spark-cluster-stop")
    cluster = StandaloneCluster(STATE.resolve(), workers=args.workers, worker_memory=args.worker_memory)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    state.write_text(json.dumps({"master": cluster.url, "ui": cluster.ui, "process_groups": cluster.groups}))
    print(f"Spark master {cluster.url} with {args.workers} workers of one core each (logs in {STATE}/)\n"
          f"web UI: {cluster.ui}\n"
          f"run the pipeline on it (the executors' Python workers use this .venv):\n"
          f"  MEDMKT_ENGINE=spark MEDMKT_SPARK_MASTER={cluster.url} PYSPARK_PYTHON={sys.executable} make run\n"
          "stop it: make spark-cluster-stop")


if __name__ == "__main__":
    main()
