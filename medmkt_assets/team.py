"""The team deployment on one machine: `make team-up` / `make team-down` (`python -m medmkt_assets.team`).

PostgreSQL from the operating system's packages, initialised in MEDMKT_TEAM_DIR/pg and listening on
loopback, holds Dagster's run, event-log and schedule storage and the MLflow server's backend store.
Beside it run the MLflow tracking server (artifacts served over HTTP), a Dagster code server, the
Dagster webserver and the daemon (separate processes: the webserver only queues runs, the daemon
launches them through the code server, so a killed daemon does not take a running run with it), and
the insight app. Every setting comes from the environment (README, Team deployment); the
PostgreSQL password, when not given, is generated into a git-ignored file readable by its owner only.
The tests start the same stack on free ports (medmkt_assets_tests/test_team.py).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse

from medmkt_assets import postgres
from medmkt_assets.settings import env
from medmkt_assets.spark_cluster import stop_groups, wait_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
INSTANCE_FILE = REPO / "dagster_team.yaml"
LOCATION = "medmkt"


def team_missing() -> str:
    """Why the team deployment cannot start here ("" when it can): PostgreSQL or the `team` extra missing."""
    for module, extra in (("dagster_postgres", "dagster-postgres"), ("psycopg2", "psycopg2-binary")):
        try:
            __import__(module)
        except ImportError:
            return f"{extra} is not installed (`make setup-team`)"
    return postgres.missing()


@dataclass
class Team:
    """Where the team's services live and listen. `Team.from_env()` reads the environment; the tests
    build one on free ports in a temporary folder. `pipeline_env` is passed to every service."""

    folder: Path
    pg_port: int
    dagster_port: int
    mlflow_port: int
    app_port: int
    code_server: str
    bind_host: str = "127.0.0.1"
    pg_host: str = "127.0.0.1"
    pg_user: str = "medmkt"
    pg_password: str = ""
    dagster_db: str = "medmkt_dagster"
    mlflow_db: str = "medmkt_mlflow"
    pg_data: Path | None = None
    artifacts: str = ""
    pipeline_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "Team":
        folder = Path(env("MEDMKT_TEAM_DIR")).resolve()
        return cls(folder=folder, pg_port=int(env("MEDMKT_PG_PORT")), dagster_port=int(env("DAGSTER_PORT")),
                   mlflow_port=int(env("MLFLOW_PORT")), app_port=int(env("MEDMKT_APP_PORT")),
                   code_server=env("MEDMKT_CODE_SERVER"), bind_host=env("MEDMKT_BIND_HOST"),
                   pg_host=env("MEDMKT_PG_HOST"), pg_user=env("MEDMKT_PG_USER"),
                   pg_password=os.environ.get("MEDMKT_PG_PASSWORD", ""), dagster_db=env("MEDMKT_PG_DAGSTER_DB"),
                   mlflow_db=env("MEDMKT_PG_MLFLOW_DB"),
                   pg_data=Path(env("MEDMKT_PG_DATA")) if os.environ.get("MEDMKT_PG_DATA") else None,
                   artifacts=os.environ.get("MEDMKT_MLFLOW_ARTIFACTS", ""))

    @property
    def dagster_home(self) -> Path:
        return self.folder / "dagster_home"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    @property
    def dagster_url(self) -> str:
        return f"http://{_client_host(self.bind_host)}:{self.dagster_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{_client_host(self.bind_host)}:{self.mlflow_port}"

    @property
    def app_url(self) -> str:
        return f"http://{_client_host(env('MEDMKT_APP_ADDRESS'))}:{self.app_port}"

    def password(self) -> str:
        """MEDMKT_PG_PASSWORD, else the one generated into secrets/pg_password (mode 0600) on first use."""
        if self.pg_password:
            return self.pg_password
        file = self.folder / "secrets" / "pg_password"
        if not file.is_file():
            file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            file.touch(mode=0o600)
            file.write_text(secrets.token_urlsafe(24))
        self.pg_password = file.read_text().strip()
        return self.pg_password

    def mlflow_backend(self) -> str:
        """The MLflow server's backend store URI (it holds the password: passed in the environment only)."""
        return (f"postgresql+psycopg2://{quote(self.pg_user)}:{quote(self.password(), safe='')}@"
                f"{self.pg_host}:{self.pg_port}/{self.mlflow_db}")

    def env(self) -> dict[str, str]:
        """The environment of every service: the connection settings, this Dagster home, the MLflow server."""
        tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
        tracking = tracking if tracking.startswith(("http://", "https://")) else self.mlflow_url
        return {**os.environ, **self.pipeline_env, "DAGSTER_HOME": str(self.dagster_home),
                "MEDMKT_PG_HOST": self.pg_host, "MEDMKT_PG_PORT": str(self.pg_port),
                "MEDMKT_PG_USER": self.pg_user, "MEDMKT_PG_PASSWORD": self.password(),
                "MEDMKT_PG_DAGSTER_DB": self.dagster_db, "MEDMKT_PG_MLFLOW_DB": self.mlflow_db,
                "MLFLOW_TRACKING_URI": tracking,
                "MEDMKT_MLFLOW_UI": os.environ.get("MEDMKT_MLFLOW_UI") or self.mlflow_url,
                "MEDMKT_APP_PORT": str(self.app_port)}


def wait_http(url: str, timeout: float, alive=None) -> None:
    """Return once `url` answers 200; TimeoutError after `timeout` seconds. `alive()`, called between
    tries, raises when the server has died (no point waiting further)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if alive is not None:
            alive()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def _client_host(host: str) -> str:
    """The address a client on this machine uses for a server bound to `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def write_instance(team: Team) -> Path:
    """DAGSTER_HOME with the team instance file and a workspace naming the code server."""
    team.dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(INSTANCE_FILE, team.dagster_home / "dagster.yaml")
    host, port = team.code_server.rsplit(":", 1)
    workspace = team.dagster_home / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server:\n      host: {host}\n      port: {port}\n"
                         f"      location_name: {LOCATION}\n")
    return workspace


def service_commands(team: Team, workspace: Path) -> dict[str, list[str]]:
    """Each service's command line (no secret in any: `ps` shows them)."""
    host, port = team.code_server.rsplit(":", 1)
    artifacts = team.artifacts or str(team.folder / "mlartifacts")
    return {
        "mlflow": [str(BIN / "mlflow"), "server", "--host", team.bind_host, "--port", str(team.mlflow_port),
                   "--serve-artifacts", "--artifacts-destination", artifacts, "--workers", "1"],
        "code-server": [str(BIN / "dagster"), "code-server", "start", "-m", "medmkt_assets.definitions",
                        "-h", host, "-p", port, "--location-name", LOCATION],
        "webserver": [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", team.bind_host,
                      "-p", str(team.dagster_port)],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
        "app": [sys.executable, "-m", "medmkt_assets.app"],
    }


def docs_command() -> list[str]:
    """The Data Docs site at MEDMKT_QUALITY_DOCS_URL, as `make dev` serves it: the check metadata links there."""
    from medmkt_assets.lib.ops.quality import data_docs_root
    from medmkt_assets.settings import Settings

    settings = Settings.from_env()
    docs = data_docs_root(settings.quality_dir)
    docs.mkdir(parents=True, exist_ok=True)
    address = urlparse(settings.quality_docs_url)
    return [sys.executable, "-m", "http.server", str(address.port or 80), "--bind", address.hostname or "127.0.0.1",
            "--directory", str(docs.resolve())]


class Services:
    """The team's processes, each in a process group of its own, logs under MEDMKT_TEAM_DIR/logs."""

    def __init__(self, team: Team):
        self.team = team
        self.groups: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        self.team.logs.mkdir(parents=True, exist_ok=True)
        log = (self.team.logs / f"{name}.log").open("a")
        process = subprocess.Popen(command, env={**self.team.env(), **(extra_env or {})}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
        self.groups[name], self.processes[name] = process.pid, process
        return process

    def stop(self, *names: str) -> None:
        names = names or tuple(reversed(list(self.groups)))
        # nothing of theirs needs flushing once their runs have ended: SIGKILL after 10 s
        stop_groups([self.groups.pop(name) for name in names if name in self.groups], grace=10)
        for name in names:
            self.processes.pop(name, None)

    def wait_http(self, name: str, url: str, timeout: float) -> None:
        """wait_http for service `name`: fail with its log tail if it exits or does not answer."""
        def alive() -> None:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}): {self.log_tail(name)}")
        try:
            wait_http(url, timeout, alive)
        except TimeoutError as error:
            raise TimeoutError(f"{error}: {self.log_tail(name)}") from None

    def log_tail(self, name: str) -> str:
        log = self.team.logs / f"{name}.log"
        return log.read_text(errors="replace")[-3000:] if log.is_file() else ""


def start_postgres(team: Team) -> Path:
    """Initialise the cluster on first use, start it on loopback, create the two databases."""
    data = postgres.data_folder(team.pg_data or team.folder / "pg")
    if not (data / "PG_VERSION").is_file():
        postgres.init_cluster(data, team.pg_user, team.password())
    postgres.start(data, team.pg_host, team.pg_port)
    for name in (team.dagster_db, team.mlflow_db):
        postgres.create_database(team.pg_host, team.pg_port, team.pg_user, team.password(), name)
    return data


def up(team: Team, app: bool = True) -> Services:
    """Start everything (PostgreSQL first) and wait until each answers; on failure stop what started."""
    services = Services(team)
    data = start_postgres(team)
    try:
        commands = service_commands(team, write_instance(team))
        services.start("mlflow", commands["mlflow"], {"MLFLOW_BACKEND_STORE_URI": team.mlflow_backend()})
        services.start("code-server", commands["code-server"])
        services.wait_http("mlflow", f"http://127.0.0.1:{team.mlflow_port}/health", 180)
        wait_port(int(team.code_server.rsplit(":", 1)[1]), 300, services.processes["code-server"],
                  team.logs / "code-server.log")
        services.start("webserver", commands["webserver"])
        services.start("daemon", commands["daemon"])
        services.wait_http("webserver", f"http://127.0.0.1:{team.dagster_port}/server_info", 300)
        if app:  # the people's UIs: the insight app and the Data Docs site
            services.start("docs", docs_command())
            services.start("app", commands["app"])
            services.wait_http("app", f"http://127.0.0.1:{team.app_port}/_stcore/health", 120)
    except BaseException:
        services.stop()
        postgres.stop(data)
        raise
    return services


def down(team: Team, services: Services | None = None) -> None:
    """Stop the services (newest first), then PostgreSQL."""
    if services is not None:
        services.stop()
    postgres.stop(postgres.data_folder(team.pg_data or team.folder / "pg"))


def submit(team: Team, job: str = "full_refresh", timeout: float = 3600) -> tuple[str, str]:
    """Queue a run of `job` through the webserver's GraphQL API and wait for its end: (run id, status)."""
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=team.dagster_port)
    run_id = client.submit_job_execution(job, repository_location_name=LOCATION)
    deadline = time.time() + timeout
    status = "QUEUED"
    while time.time() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
        time.sleep(2)
        status = client.get_run_status(run_id).value
    return run_id, status


def _state(team: Team) -> Path:
    return team.folder / "state.json"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="medmkt-team", description="The team deployment on this machine.")
    parser.add_argument("action", choices=("up", "down", "run"))
    parser.add_argument("--job", default="full_refresh", help="for `run`: the job to queue")
    args = parser.parse_args(argv)
    team = Team.from_env()
    if args.action == "up":
        postgres.install()
    missing = team_missing()
    if missing and args.action == "up":
        print(f"team deployment: {missing}", file=sys.stderr)
        return 2
    state = _state(team)
    if args.action == "down":
        if state.is_file():
            stop_groups(json.loads(state.read_text())["process_groups"])
            state.unlink()
        down(team)
        print("stopped")
        return 0
    if args.action == "run":
        run_id, status = submit(team, args.job)
        print(f"run {run_id} of {args.job}: {status} ({team.dagster_url}/runs/{run_id})")
        return 0 if status == "SUCCESS" else 1
    if state.is_file():
        print(f"already up (see {state}); `make team-down` first", file=sys.stderr)
        return 1
    services = up(team)
    state.write_text(json.dumps({"process_groups": list(services.groups.values()), "services": services.groups}))
    print(f"Dagster {team.dagster_url} · MLflow {team.mlflow_url} · insight app {team.app_url} · "
          f"Data Docs {env('MEDMKT_QUALITY_DOCS_URL')}\n"
          f"PostgreSQL {team.pg_host}:{team.pg_port} (databases {team.dagster_db}, {team.mlflow_db}); "
          f"logs in {team.logs}\n"
          f"a full run through it: make team-run · stop everything: make team-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
