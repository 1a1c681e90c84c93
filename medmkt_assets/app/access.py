"""Who may open the insight app. On loopback only this machine's users reach it; beyond loopback it
shows patient-level marketing data to a network, so it requires Streamlit's OIDC login, configured
from the environment (MEDMKT_APP_OIDC_*, MEDMKT_APP_COOKIE_SECRET), and refuses to start without one."""
from __future__ import annotations

import ipaddress
import os
import tempfile
from pathlib import Path

OIDC = {  # [auth] key in Streamlit's secrets -> environment variable
    "server_metadata_url": "MEDMKT_APP_OIDC_METADATA_URL",
    "client_id": "MEDMKT_APP_OIDC_CLIENT_ID",
    "client_secret": "MEDMKT_APP_OIDC_CLIENT_SECRET",
    "redirect_uri": "MEDMKT_APP_OIDC_REDIRECT_URI",
    "cookie_secret": "MEDMKT_APP_COOKIE_SECRET",
}
LOGIN_FLAG = "MEDMKT_APP_LOGIN_REQUIRED"  # set for the Streamlit process by __main__: Home.py gates on it


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or 0.0.0.0-like wildcard: reachable beyond this machine


def missing_login(environ: dict[str, str] | None = None) -> list[str]:
    """The OIDC variables that are not set."""
    environ = os.environ if environ is None else environ
    return [name for name in OIDC.values() if not environ.get(name, "").strip()]


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_secrets(environ: dict[str, str] | None = None) -> Path:
    """Streamlit's [auth] secrets from the environment, in a private file (mode 0600, in memory where
    /dev/shm exists) outside the repository: secrets never land in a folder under version control."""
    environ = os.environ if environ is None else environ
    folder = Path(tempfile.mkdtemp(prefix="medmkt-app-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    file = folder / "secrets.toml"
    file.touch(mode=0o600)
    file.write_text("[auth]\n" + "".join(f"{key} = {_toml(environ[name].strip())}\n" for key, name in OIDC.items()))
    return file


def login_args(address: str, environ: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Extra `streamlit run` arguments and environment for listening on `address`; SystemExit (with
    what to set) when it is beyond loopback and no login is configured."""
    if is_loopback(address):
        return [], {}
    missing = missing_login(environ)
    if missing:
        raise SystemExit(f"The insight app shows patient-level data: to listen on {address} (beyond loopback) "
                         f"it requires a login. Set {', '.join(missing)} (Streamlit's OIDC login; README, "
                         "Team deployment), or listen on 127.0.0.1.")
    return ["--secrets.files", str(write_secrets(environ))], {LOGIN_FLAG: "1"}
