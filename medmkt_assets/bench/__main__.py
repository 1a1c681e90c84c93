"""`python -m medmkt_assets.bench --sizes 10000,100000,1000000`: measure the whole pipeline.

For each size: generate demo data (Parquet), run every asset in a child process, and
record wall seconds, peak resident memory (from the OS) and rows per asset and for the
run. Results go to data/bench/ as CSV and markdown, with the machine they ran on.
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
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                  if l.startswith("MemTotal"))
    import duckdb
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "duckdb": duckdb.__version__, "os": platform.platform()}


def run_child(cmd: list[str], timeout: float | None = None,
              memory_cap_bytes: int | None = None) -> tuple[int, float, float]:
    """Run a command; return (exit code, wall seconds, peak RSS MiB of the child per the kernel)."""
    def cap() -> None:
        if memory_cap_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_cap_bytes, memory_cap_bytes))

    start = time.time()
    proc = subprocess.Popen(cmd, preexec_fn=cap)
    try:
        _, status, usage = os.wait4(proc.pid, 0) if timeout is None else _wait_with_timeout(proc, timeout)
    except TimeoutError:
        return -9, time.time() - start, float("nan")
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.time() - start, usage.ru_maxrss / 1024


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


# About 20 order lines per patient, the volume the benchmark is specified at (the demo default is 14.0).
ORDER_VOLUME = 1.43


def bench_size(patients: int, root: Path, keep: bool) -> list[dict]:
    work = root / "work" / str(patients)
    source, warehouse = work / "source", work / "warehouse.duckdb"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    py = sys.executable
    code, gen_s, gen_mb = run_child([py, "-m", "medmkt_assets.demo_data", "--patients", str(patients),
                                     "--seed", "7", "--out", str(source), "--format", "parquet",
                                     "--order-volume", str(ORDER_VOLUME)])
    if code:
        raise SystemExit(f"demo data generation for {patients} patients failed (exit {code})")
    rows = [{"patients": patients, "step": "generate demo data (not part of the pipeline)",
             "seconds": round(gen_s, 2), "peak_rss_mb": round(gen_mb, 1), "rows": None, "status": "ok"}]
    out = work / "run.json"
    code, run_s, run_mb = run_child([py, "-m", "medmkt_assets.bench.worker", "--source", str(source),
                                     "--warehouse", str(warehouse), "--out", str(out),
                                     "--mlflow", f"sqlite:///{work / 'mlflow.db'}"])
    result = json.loads(out.read_text()) if out.exists() else {"steps": [], "success": False}
    for step in result["steps"]:
        rows.append({"patients": patients, **step})
    rows.append({"patients": patients, "step": "WHOLE PIPELINE", "seconds": round(run_s, 2),
                 "peak_rss_mb": round(run_mb, 1), "rows": None,
                 "status": "ok" if result.get("success") and code == 0 else "failed"})
    if result.get("success") and code == 0:
        rows.append(bench_batch(patients, work, py))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def bench_batch(patients: int, work: Path, py: str) -> dict:
    """A new orders batch of 1 % of the data through the sensor path, on the warehouse just built."""
    out = work / "batch.json"
    code, seconds, peak = run_child([py, "-m", "medmkt_assets.bench.batch", "--source", str(work / "source"),
                                     "--warehouse", str(work / "warehouse.duckdb"), "--incoming",
                                     str(work / "incoming"), "--mlflow", f"sqlite:///{work / 'mlflow.db'}",
                                     "--out", str(out)])
    result = json.loads(out.read_text()) if code == 0 and out.exists() else {}
    ok = bool(result.get("success"))
    return {"patients": patients, "step": "NEW 1% ORDERS BATCH via the incoming_files sensor "
            f"(sensor {result.get('sensor_seconds', '?')} s + run {result.get('run_seconds', '?')} s; "
            f"target < 60 s)", "seconds": result.get("seconds", round(seconds, 2)),
            "peak_rss_mb": round(peak, 1), "rows": result.get("batch_rows"),
            "status": "ok" if ok else f"failed (exit {code})"}


# Which of our pipeline steps do the work each naive stage does.
NAIVE_COUNTERPARTS = {
    "pandas_profiles": ("staging__", "marts__patient_profiles"),
    "dense_apriori": ("association_rules",),
    "rbf_svc": ("propensity",),
    "agglomerative_all": ("segment",),
}


def naive_comparison(patients: int, root: Path, ours: list[dict], timeout: float,
                     memory_cap_gib: float) -> list[dict]:
    """Run each naive stage on the same generated data and compare with our matching steps."""
    source = root / "work" / str(patients) / "source"
    rows = []
    for stage, patterns in NAIVE_COUNTERPARTS.items():
        code, seconds, peak = run_child([sys.executable, "-m", "medmkt_assets.bench.naive", stage, str(source)],
                                        timeout=timeout, memory_cap_bytes=int(memory_cap_gib * 2**30))
        matched = [r for r in ours if r["patients"] == patients and any(p in r["step"] for p in patterns)]
        our_s = sum(r["seconds"] for r in matched)
        our_mb = max((r["peak_rss_mb"] for r in matched), default=float("nan"))
        outcome = {0: "ok", -9: f"timed out after {timeout:.0f}s"}.get(
            code, f"failed (exit {code}; out of memory under the {memory_cap_gib:g} GiB cap?)")
        rows.append({"patients": patients, "naive stage": stage, "naive outcome": outcome,
                     "naive seconds": round(seconds, 1), "naive peak_rss_mb": round(peak, 1),
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
        code, wall, peak = run_child([sys.executable, "-m", "medmkt_assets.bench.kernels", kernel, str(out)])
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
        shown = part.drop(columns=["patients"]).assign(
            rows=part["rows"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}"))  # not 2.01943e+07
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
    args = parser.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    rows, naive = [], []
    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        print(f"== {size:,} patients", flush=True)
        compare = size == args.naive_size
        rows += bench_size(size, root, keep=args.keep or compare)
        if compare:
            print(f"== naive comparison at {size:,} patients", flush=True)
            naive = naive_comparison(size, root, rows, args.naive_timeout, args.naive_memory_gib)
            if not args.keep:
                shutil.rmtree(root / "work" / str(size), ignore_errors=True)
        write_tables(rows, root, machine(), naive)  # partial results survive an interrupted run
    kernels = [] if args.no_kernels else bench_kernels(root)
    path = write_tables(rows, root, machine(), naive, kernels)
    print(path.read_text())


if __name__ == "__main__":
    main()
