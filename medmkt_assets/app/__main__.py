"""`python -m medmkt_assets.app [streamlit options]`: serve the insight app on MEDMKT_APP_ADDRESS:MEDMKT_APP_PORT."""
import os
import sys
from pathlib import Path

from medmkt_assets.app.access import login_args
from medmkt_assets.settings import Settings, env

APP = Path(__file__).with_name("Home.py")


def command(port: int, extra: list[str], address: str = "127.0.0.1") -> list[str]:
    """`streamlit run` headless on `address` (127.0.0.1 unless MEDMKT_APP_ADDRESS says otherwise), without
    Streamlit's English app menu (`minimal`: only the menu items Home.py sets, and it sets none)."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal", *extra]


def address_of(extra: list[str]) -> str:
    """The address the app will listen on: a --server.address among `extra` wins over MEDMKT_APP_ADDRESS."""
    address = env("MEDMKT_APP_ADDRESS")
    for n, arg in enumerate(extra):
        if arg == "--server.address" and n + 1 < len(extra):
            address = extra[n + 1]
        elif arg.startswith("--server.address="):
            address = arg.split("=", 1)[1]
    return address


if __name__ == "__main__":
    address = address_of(sys.argv[1:])
    login, login_env = login_args(address)
    argv = command(Settings.from_env().app_port, login + sys.argv[1:], address)
    os.environ.update(login_env)
    os.execv(argv[0], argv)
