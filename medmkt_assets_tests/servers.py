"""Helpers for tests that start a real server (the Dagster UI, the insight app): a free port, and
waiting until it answers."""
import socket

from medmkt_assets.team import wait_http  # noqa: F401 (the tests' import of it)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


