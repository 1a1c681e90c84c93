"""`python -m medmkt_assets.bench --sizes 10000,100000,1000000`: measure the whole pipeline.

For each size: generate demo data (Parquet), run every asset in a child process, and
record wall seconds, peak resident memory (from the OS) and rows per asset and for the
run. Results go to data/bench/ as CSV and markdown, with the machine they ran on.

`--engine spark` runs the same graph on PySpark (MEDMKT_ENGINE=spark) over a lakehouse in
the size's work folder, with `--spark-master` (local[1], local[2], ...: how many cores) and
`--spark-partitions` (shuffle partitions) to measure scaling. Every row says its engine,
master and partitions (blank on DuckDB), so tables of both engines can be put together.

Memory (MiB): peak_rss_mb is the peak of the summed RSS of the child's whole process tree,
because the work does not all happen in the Python process: on Spark it happens in a JVM
that process starts (driver and executors, in local mode) and in the Python workers the JVM
starts (model scoring, mapInPandas); on both engines the propensity fits run in joblib
worker processes. It is the larger of the kernel's high-water mark of the largest single
process (wait4's ru_maxrss) and the tree's RSS summed every 0.5 s (which can miss a peak
between samples). python_peak_rss_mb is the child process alone (its VmHWM read every 0.5
s; ru_maxrss when it started no process), jvm_peak_rss_mb the JVMs below it (0 on DuckDB);
the rest of the tree (joblib's and Spark's Python workers) shows in peak_rss_mb only. The
worker samples the pipeline's steps the same way, every 0.05 s (a step's python_peak_rss_mb
is its peak VmRSS).

Before the Spark engine, peak_rss_mb was ru_maxrss alone, which on DuckDB is in practice
the worker's own high-water mark: today's python_peak_rss_mb. A step's peak_rss_mb was the
worker's own RSS: today's python_peak_rss_mb of the step. The joblib workers' memory
(about 450 MB at 3,000 patients) was not counted, so DuckDB tables from before show a
lower peak_rss_mb than today's for the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from medmkt_assets.bench.memory import RssSampler


def machine(engine: str = "duckdb") -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                  if l.startswith("MemTotal"))
    import duckdb
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "duckdb": duckdb.__version__, "os": platform.platform(),
            **({"pyspark": __import__("pyspark").__version__} if engine == "spark" else {})}


class ChildRun(NamedTuple):
    code: int
    seconds: float
    peak_mb: float         # the child's whole process tree: see the module docstring
    python_peak_mb: float  # the child process itself
    jvm_peak_mb: float     # the JVMs below it (Spark), summed


def run_child(cmd: list[str], timeout: float | None = None, memory_cap_bytes: int | None = None,
              env: dict[str, str] | None = None) -> ChildRun:
    """Run a command (with `env` added to ours) and measure its process tree's memory.

    wait4's ru_maxrss alone is the high-water mark of the single largest process below us,
    not of the tree, and misses a JVM its parent never waits for; so the tree is sampled too.
    """
    def cap() -> None:
        if memory_cap_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_cap_bytes, memory_cap_bytes))

    start = time.time()
    proc = subprocess.Popen(cmd, preexec_fn=cap, env={**os.environ, **env} if env else None)
    with RssSampler(proc.pid, interval=0.5, rescan=0) as sampler:
        try:
            _, status, usage = os.wait4(proc.pid, 0) if timeout is None else _wait_with_timeout(proc, timeout)
        except TimeoutError:
            return ChildRun(-9, time.time() - start, float("nan"), float("nan"), float("nan"))
    proc.returncode = os.waitstatus_to_exitcode(status)
    tree, _, jvm = (b / 2**20 for b in sampler.peaks())
    own = sampler.own_hwm / 2**20  # as last read, up to 0.5 s before the end
    if sampler.alone:  # then the kernel's high-water mark is the child's own, and exact
        own = max(own, usage.ru_maxrss / 1024)
    return ChildRun(proc.returncode, time.time() - start, max(usage.ru_maxrss / 1024, tree), own, jvm)


def _wait_with_timeout(proc: subprocess.Popen, timeout: float):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        time.sleep(0.2)
    proc.kill()
    os.wait4(proc.pid, 0)
    raise TimeoutError


@dataclass(frozen=True)
class Engine:
    """The engine a run is measured on: what the children get in their environment, and what
    every result row says (so DuckDB and Spark rows can share one table)."""

    name: str = "duckdb"
    master: str = "local[*]"
    partitions: int = 8

    def env(self, work: Path) -> dict[str, str]:
        """Set on DuckDB too, so a MEDMKT_ENGINE exported in the shell cannot change what is measured."""
        if self.name != "spark":
            return {"MEDMKT_ENGINE": "duckdb"}
        return {"MEDMKT_ENGINE": "spark", "MEDMKT_LAKEHOUSE": str(work / "lakehouse"),
                "MEDMKT_SPARK_MASTER": self.master, "MEDMKT_SPARK_PARTITIONS": str(self.partitions),
                "MEDMKT_SPARK_REMOTE": ""}  # the master measured here, never a Spark Connect server

    def columns(self) -> dict:
        spark = self.name == "spark"
        return {"engine": self.name, "master": self.master if spark else "",
                "partitions": self.partitions if spark else None}


def memory_columns(run: ChildRun) -> dict:
    return {"peak_rss_mb": round(run.peak_mb, 1), "python_peak_rss_mb": round(run.python_peak_mb, 1),
            "jvm_peak_rss_mb": round(run.jvm_peak_mb, 1)}


# About 20 order lines per patient, the volume the benchmark is specified at (the demo default is 14.0).
ORDER_VOLUME = 1.43


# Written into a data folder once its demo data is complete, so an interrupted generation is redone.
DATA_COMPLETE = ".complete"


def bench_size(patients: int, root: Path, keep: bool, engine: Engine = Engine(), data: Path | None = None) -> list[dict]:
    """Measure one size. With `data`, the demo source is `data/<patients>`: generated there the first
    time and read in place after that (at 10,000,000 patients generating takes longer than the run)."""
    work = root / "work" / str(patients)
    source, warehouse = (data / str(patients) if data else work / "source"), work / "warehouse.duckdb"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    py = sys.executable
    head = {"patients": patients, **engine.columns()}
    rows = []
    if not (source / DATA_COMPLETE).exists():
        shutil.rmtree(source, ignore_errors=True)
        gen = run_child([py, "-m", "medmkt_assets.demo_data", "--patients", str(patients),
                         "--seed", "7", "--out", str(source), "--format", "parquet",
                         "--order-volume", str(ORDER_VOLUME)])
        if gen.code:
            raise SystemExit(f"demo data generation for {patients} patients failed (exit {gen.code})")
        (source / DATA_COMPLETE).touch()
        rows.append({**head, "step": "generate demo data (not part of the pipeline)",
                     "seconds": round(gen.seconds, 2), **memory_columns(gen), "rows": None, "status": "ok"})
    out = work / "run.json"
    run = run_child([py, "-m", "medmkt_assets.bench.worker", "--source", str(source),
                     "--warehouse", str(warehouse), "--out", str(out),
                     "--mlflow", f"sqlite:///{work / 'mlflow.db'}"], env=engine.env(work))
    result = json.loads(out.read_text()) if out.exists() else {"steps": [], "success": False}
    for step in result["steps"]:
        rows.append({**head, **step})
    ok = result.get("success") and run.code == 0
    rows.append({**head, "step": "WHOLE PIPELINE", "seconds": round(run.seconds, 2), **memory_columns(run),
                 "rows": None, "status": "ok" if ok else "failed"})
    if ok:
        rows.append(bench_batch(head, work, source, py, engine))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def bench_batch(head: dict, work: Path, source: Path, py: str, engine: Engine) -> dict:
    """A new orders batch of 1 % of the data through the sensor path, on the warehouse just built
    (on the same engine: on Spark the warehouse file only holds views of the lakehouse)."""
    out = work / "batch.json"
    run = run_child([py, "-m", "medmkt_assets.bench.batch", "--source", str(source),
                     "--warehouse", str(work / "warehouse.duckdb"), "--incoming",
                     str(work / "incoming"), "--mlflow", f"sqlite:///{work / 'mlflow.db'}",
                     "--out", str(out)], env=engine.env(work))
    result = json.loads(out.read_text()) if run.code == 0 and out.exists() else {}
    ok = bool(result.get("success"))
    return {**head, "step": "NEW 1% ORDERS BATCH via the incoming_files sensor "
            f"(sensor {result.get('sensor_seconds', '?')} s + run {result.get('run_seconds', '?')} s; "
            f"target ≤ 10 s at 1,000,000 patients)", "seconds": result.get("seconds", round(run.seconds, 2)),
            **memory_columns(run), "rows": result.get("batch_rows"),
            "status": "ok" if ok else f"failed (exit {run.code})"}


# Which of our pipeline steps do the work each naive stage does.
NAIVE_COUNTERPARTS = {
    "pandas_profiles": ("staging__", "marts__patient_profiles"),
    "dense_apriori": ("association_rules",),
    "rbf_svc": ("propensity",),
    "agglomerative_all": ("segment",),
}


def naive_comparison(patients: int, root: Path, ours: list[dict], timeout: float,
                     memory_cap_gib: float, data: Path | None = None) -> list[dict]:
    """Run each naive stage on the same generated data and compare with our matching steps."""
    source = data / str(patients) if data else root / "work" / str(patients) / "source"
    rows = []
    for stage, patterns in NAIVE_COUNTERPARTS.items():
        code, seconds, peak, *_ = run_child([sys.executable, "-m", "medmkt_assets.bench.naive", stage, str(source)],
                                            timeout=timeout, memory_cap_bytes=int(memory_cap_gib * 2**30))
        matched = [r for r in ours if r["patients"] == patients and any(p in r["step"] for p in patterns)]
        our_s = sum(r["seconds"] for r in matched)
        our_mb = max((r["peak_rss_mb"] for r in matched), default=float("nan"))
        outcome = {0: "ok", -9: f"timed out after {timeout:.0f}s"}.get(
            code, f"failed (exit {code}; out of memory under the {memory_cap_gib:g} GiB cap?)")
        rows.append({"patients": patients, "naive stage": stage, "naive outcome": outcome,
                     "naive seconds": round(seconds, 1), "naive peak_rss_mb": round(peak, 1),
                     "medmkt engine": matched[0]["engine"] if matched else "",
                     "medmkt steps": ", ".join(r["step"] for r in matched) or "(none)",
                     "medmkt seconds": round(our_s, 1), "medmkt peak_rss_mb": our_mb,
                     "time ratio (naive/medmkt)": round(seconds / our_s, 1) if our_s and code == 0 else None,
                     "memory ratio (naive/medmkt)": round(peak / our_mb, 1) if our_mb and code == 0 else None})
    return rows


def bench_kernels(root: Path) -> list[dict]:
    """Each analytics kernel alone at its target size, in its own process (peak RSS from the OS)."""
    from medmkt_assets.bench.kernels import TARGETS

    rows = []
    for kernel, (target_s, target_gb) in TARGETS.items():
        out = root / f"kernel-{kernel}.json"
        out.unlink(missing_ok=True)
        code, wall, peak, *_ = run_child([sys.executable, "-m", "medmkt_assets.bench.kernels", kernel, str(out)])
        result = json.loads(out.read_text()) if code == 0 and out.exists() else {}
        seconds = result.get("seconds", float("nan"))
        rows.append({"kernel": kernel, "seconds (measured part)": round(seconds, 1),
                     "wall seconds (incl. data generation)": round(wall, 1), "peak_rss_mb": round(peak, 1),
                     "target": f"≤ {target_s} s" + (f", ≤ {target_gb} GB" if target_gb else ""),
                     "met": bool(code == 0 and seconds <= target_s and (not target_gb or peak <= target_gb * 1024)),
                     "details": ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("kernel", "seconds"))
                     or f"failed (exit {code})"})
        out.unlink(missing_ok=True)
    return rows


def write_tables(rows: list[dict], root: Path, info: dict, naive: list[dict] | None = None,
                 kernels: list[dict] | None = None) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    frame = pd.DataFrame(rows)
    csv_path = root / f"bench-{stamp}.csv"
    frame.to_csv(csv_path, index=False)
    lines = [f"# medmkt benchmark {stamp}", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
             "Command: `" + " ".join(["make bench"] + sys.argv[1:]) + "`", ""]
    for patients, part in frame.groupby("patients", sort=True):
        counts = {c: part[c].map(lambda v: "" if pd.isna(v) else f"{int(v):,}")  # not 2.01943e+07 / 8.0
                  for c in ("rows", "partitions") if c in part}
        shown = part.drop(columns=["patients"]).assign(**counts)
        lines += [f"## {patients:,} patients", "", shown.to_markdown(index=False), ""]
    if kernels:
        lines += ["## Kernels at their target sizes", "",
                  "Peak RSS includes generating the synthetic input in the same process.", "",
                  pd.DataFrame(kernels).to_markdown(index=False), ""]
    if naive:
        lines += ["## Against the naive way", "", pd.DataFrame(naive).to_markdown(index=False), ""]
        pd.DataFrame(naive).to_csv(root / f"bench-{stamp}-naive.csv", index=False)
    md_path = root / f"bench-{stamp}.md"
    md_path.write_text("\n".join(lines))
    shutil.copyfile(md_path, root / "latest.md")
    shutil.copyfile(csv_path, root / "latest.csv")
    return md_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated patient counts")
    parser.add_argument("--out", default="data/bench", help="folder for the result tables")
    parser.add_argument("--keep", action="store_true", help="keep generated data and warehouses")
    parser.add_argument("--naive-size", type=int, default=100_000,
                        help="size at which to compare with the naive way (0: skip; must be in --sizes)")
    parser.add_argument("--naive-timeout", type=float, default=900, help="seconds per naive stage")
    parser.add_argument("--naive-memory-gib", type=float, default=16, help="memory cap per naive stage")
    parser.add_argument("--no-kernels", action="store_true", help="skip the kernels at their target sizes")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb", help="engine of the pipeline runs")
    parser.add_argument("--spark-master", default="local[*]", help="Spark master, e.g. local[1] or local[2] (spark only)")
    parser.add_argument("--spark-partitions", type=int, default=8, help="Spark SQL shuffle partitions (spark only)")
    parser.add_argument("--data", type=Path, help="keep demo data in DATA/<patients> and reuse it on the next run "
                        "(default: generated into the work folder each time)")
    args = parser.parse_args()
    engine = Engine(args.engine, args.spark_master, args.spark_partitions)
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    rows, naive = [], []
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        print(f"== {size:,} patients", flush=True)
        compare = size == args.naive_size
        rows += bench_size(size, root, keep=args.keep or compare, engine=engine, data=args.data)
        if compare:
            print(f"== naive comparison at {size:,} patients", flush=True)
            naive = naive_comparison(size, root, rows, args.naive_timeout, args.naive_memory_gib, args.data)
            if not args.keep:
                shutil.rmtree(root / "work" / str(size), ignore_errors=True)
        write_tables(rows, root, machine(engine.name), naive)  # partial results survive an interrupted run
    kernels = [] if args.no_kernels else bench_kernels(root)
    path = write_tables(rows, root, machine(engine.name), naive, kernels)
    print(path.read_text())


if __name__ == "__main__":
    main()
