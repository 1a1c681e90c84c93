"""`python -m medmkt_assets.app [streamlit options]`: serve the insight app on MEDMKT_APP_PORT."""
import os
import sys
from pathlib import Path

from medmkt_assets.settings import Settings

APP = Path(__file__).with_name("Home.py")


def command(port: int, extra: list[str]) -> list[str]:
    """`streamlit run` headless on 127.0.0.1 (the data is about patients: pass --server.address to share it),
    without Streamlit's English app menu (`minimal`: only the menu items Home.py sets, and it sets none)."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal", *extra]


if __name__ == "__main__":
    argv = command(Settings.from_env().app_port, sys.argv[1:])
    os.execv(argv[0], argv)
