"""A PostgreSQL cluster of the project's own, from the operating system's packages (Debian's
`postgresql`): initialised in a project folder, listening on loopback only, password authentication.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user the package
creates (else `nobody`) and its commands run through `runuser`. That user must reach the data folder:
when a parent folder is closed to it (a clone under /root), the cluster goes to a folder of its own
under /var/tmp instead, and `data_folder` says so.
"""
from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def pg_bin(name: str) -> str | None:
    """A PostgreSQL program: on the PATH, else in Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                      if p.parent.name.isdigit() else 0)
    candidates = [v / name for v in reversed(versions) if (v / name).is_file()]
    return str(candidates[0]) if candidates else None


def missing() -> str:
    """Why no cluster can be started here ("" when one can)."""
    absent = [name for name in ("initdb", "pg_ctl", "postgres") if pg_bin(name) is None]
    if absent:
        return f"PostgreSQL is not installed ({', '.join(absent)} not found; Debian: apt-get install postgresql)"
    return ""


def install() -> bool:
    """Install Debian's `postgresql` when it is missing and this is root on a Debian-like system (what
    `make team-up` does on a fresh machine); False when that cannot be done here."""
    if not missing():
        return True
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    print("installing PostgreSQL from the operating system's packages (apt-get install postgresql) ...", flush=True)
    environ = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"]):
        if subprocess.run(command, env=environ).returncode != 0:
            return False
    return not missing()


def owner() -> str | None:
    """The user the cluster runs as: None for an unprivileged caller (itself), else `postgres` or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, but there is neither a `postgres` nor a `nobody` user to run PostgreSQL")


def as_owner(command: list[str]) -> list[str]:
    user = owner()
    return ["runuser", "-u", user, "--", *command] if user else command


def _reachable(folder: Path) -> bool:
    """Whether the cluster's owner can pass through `folder` (its nearest existing ancestor: the folders
    created below it are open to everyone)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return subprocess.run(as_owner(["test", "-x", str(probe)]), capture_output=True).returncode == 0


def data_folder(wanted: Path) -> Path:
    """The folder the cluster lives in: `wanted`, or a stand-in under /var/tmp its owner can reach."""
    wanted = wanted.resolve()
    if owner() is None or _reachable(wanted.parent):
        return wanted
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir() if not Path("/var/tmp").is_dir() else "/var/tmp") / f"medmkt-pg-{digest}"


def _own(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    user = owner()
    if user:
        shutil.chown(folder, user, None)
    folder.chmod(0o700)


def init_cluster(data: Path, user: str, password: str) -> None:
    """initdb: superuser `user` with `password` (scram-sha-256 on every connection, local ones too)."""
    _own(data)
    scratch = Path(tempfile.mkdtemp(prefix="medmkt-pg-"))  # initdb wants an empty data folder
    try:
        _own(scratch)
        pwfile = scratch / "pw"
        pwfile.write_text(password)
        if owner():
            shutil.chown(pwfile, owner(), None)
        done = subprocess.run(as_owner([pg_bin("initdb"), "-D", str(data), "-U", user, "--pwfile", str(pwfile),
                                        "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C"]),
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed in {data}: {done.stderr[-2000:]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def running(data: Path) -> bool:
    done = subprocess.run(as_owner([pg_bin("pg_ctl"), "-D", str(data), "status"]), capture_output=True)
    return done.returncode == 0


def start(data: Path, host: str, port: int) -> None:
    """Start the cluster on `host`:`port` (no Unix socket), waiting until it accepts connections. Its
    log is `data`/server.log (a folder its owner can write)."""
    if running(data):
        return
    log = data / "server.log"
    options = f"-c listen_addresses={host} -p {port} -c unix_socket_directories=''"
    done = subprocess.run(as_owner([pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                                    "-w", "-t", "120", "start"]), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"PostgreSQL did not start: {done.stdout}{done.stderr}{log.read_text()[-2000:] if log.is_file() else ''}")


def stop(data: Path) -> None:
    if (data / "PG_VERSION").is_file() and running(data):
        subprocess.run(as_owner([pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       check=True, capture_output=True)


def connect(host: str, port: int, user: str, password: str, database: str = "postgres"):
    import psycopg2

    return psycopg2.connect(host=host, port=port, user=user, password=password, dbname=database,
                            connect_timeout=10)


def create_database(host: str, port: int, user: str, password: str, name: str) -> None:
    """CREATE DATABASE `name` unless it exists."""
    con = connect(host, port, user, password)
    con.autocommit = True
    try:
        with con.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
