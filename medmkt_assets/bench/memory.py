"""Resident memory as the operating system reports it (Linux /proc), sampled in a thread.

A process's own RSS misses what it runs in other processes: on the Spark engine the work
happens in a JVM the Python process starts (driver and executors, in local mode) and in
Python workers the JVM starts; on both engines the propensity fits run in joblib workers. So the sampler reads a
process and all its descendants, summed, and keeps apart the process itself (`own`) and
the JVMs among its descendants (`jvm`). Summed RSS counts pages shared between processes
twice: an upper estimate of the tree's footprint, which suits a benchmark that must not
understate memory.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def _status_bytes(pid: int | str, field: str) -> int:
    """A `field:  N kB` line of /proc/<pid>/status in bytes; 0 when the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":")), 0)


def current_rss_bytes(pid: int | str = "self") -> int:
    """VmRSS of a process, from /proc/<pid>/status."""
    return _status_bytes(pid, "VmRSS")


def peak_rss_bytes(pid: int | str = "self") -> int:
    """VmHWM: the process's high-water mark of resident memory."""
    return _status_bytes(pid, "VmHWM")


def is_jvm(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "java"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, from the parent links in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


class RssSampler:
    """Samples the RSS of a process (default: this one) and of its descendants every `interval`
    seconds, so peaks can be attributed to steps. Descendants are looked up again every
    `rescan` seconds (a /proc walk), not at every sample."""

    def __init__(self, pid: int | None = None, interval: float = 0.05, rescan: float = 1.0):
        self.pid = pid or os.getpid()
        self.interval, self.rescan = interval, rescan
        self.samples: list[tuple[float, int, int, int]] = []  # (time, own, JVMs, other descendants) RSS
        self.own_hwm = 0  # the process's own kernel high-water mark, as last read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        jvms, others, scanned = [], [], 0.0
        while not self._stop.is_set():
            now = time.time()
            if now - scanned >= self.rescan:
                below, scanned = descendants(self.pid), now
                jvms = [pid for pid in below if is_jvm(pid)]
                others = [pid for pid in below if pid not in jvms]
            self.own_hwm = max(self.own_hwm, peak_rss_bytes(self.pid))
            self.samples.append((now, current_rss_bytes(self.pid), sum(map(current_rss_bytes, jvms)),
                                 sum(map(current_rss_bytes, others))))
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peaks_between(self, start: float, end: float) -> tuple[int, int, int]:
        """(peak of the whole tree, peak of the process itself, peak of its JVMs) in bytes. The
        first is the peak of the sum, not the sum of peaks."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:  # a step shorter than the sampling interval: the last sample before it ended
            inside = [s for s in self.samples if s[0] <= end][-1:]
        return (max((sum(s[1:]) for s in inside), default=0),
                max((s[1] for s in inside), default=0), max((s[2] for s in inside), default=0))

    @property
    def alone(self) -> bool:
        """Whether the process was never seen with descendants."""
        return not any(s[2] or s[3] for s in self.samples)

    def peaks(self) -> tuple[int, int, int]:
        """peaks_between over the whole sampling."""
        return self.peaks_between(float("-inf"), float("inf"))
