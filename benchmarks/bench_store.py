"""The native feature store vs numpy.memmap of one .npy file and torch.load of a saved tensor, side by side.

    python benchmarks/bench_store.py [--rows 1000000] [--small-rows 10000] [--width 512] [--dir /tmp/mmlop-bench-store]

Builds (once, reused on later runs) a float16 store of ``rows x width`` random rows under ``--dir``, plus the
same rows as ``rows.npy`` and ``rows.pt``, and a ``--small-rows`` copy of each to show that opening does not
grow with the file. Then, in one process, measures:

- open: the store (header and length checks only, and with full checksum verification), ``np.load(mmap_mode
  ="r")``, ``torch.load(mmap=True)`` and ``torch.load()`` (reads everything);
- random gather: batches of 256 random rows; the store gathers *by key* (lookup included), the baselines by
  row index;
- sequential scan: every row once, copied in chunks into a preallocated buffer.

All files are in the page cache (they were just written or read; this measures warm reads, not the disk).
Writes benchmarks/results/store-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import write_result  # noqa: E402

from mmlop._native import Store, merge  # noqa: E402

FINGERPRINT = "bench-random-rows"


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def build(directory: Path, n: int, width: int) -> dict[str, Path]:
    """Writes the store, .npy and .pt of n random float16 rows (skipped when they exist)."""
    paths = {"store": directory / f"rows{n}.mmfs", "npy": directory / f"rows{n}.npy",
             "pt": directory / f"rows{n}.pt", "keys": directory / f"keys{n}.npy"}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(n)
    keys = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    rows = np.empty((n, width), np.float16)
    for i in range(0, n, 65536):
        rows[i:i + 65536] = rng.standard_normal((min(65536, n - i), width), dtype=np.float32)
    paths["store"].unlink(missing_ok=True)
    merge(paths["store"], keys, rows, dtype="float16", width=width, fingerprint=FINGERPRINT)
    np.save(paths["npy"], rows)
    torch.save(torch.from_numpy(rows), paths["pt"])
    np.save(paths["keys"], keys)  # last: its presence marks a complete build
    return paths


def bench_open(paths: dict[str, Path], n: int, repeats: int) -> list[dict]:
    cases = {
        "store": lambda: Store(paths["store"], verify=False),
        "store_verified": lambda: Store(paths["store"], verify=True),
        "numpy_memmap": lambda: np.load(paths["npy"], mmap_mode="r"),
        "torch_load_mmap": lambda: torch.load(paths["pt"], mmap=True, weights_only=True),
        "torch_load": lambda: torch.load(paths["pt"], weights_only=True),
    }
    rows = []
    for impl, fn in cases.items():
        reps = repeats if impl not in ("torch_load", "store_verified") else 3
        t = timed(fn, reps)
        rows.append({"op": "open", "impl": impl, "rows": n, "median_ms": 1e3 * statistics.median(t), "repeats": reps})
    return rows


def bench_gather(paths: dict[str, Path], n: int, batch: int, batches: int, rounds: int) -> list[dict]:
    keys = np.load(paths["keys"])
    store = Store(paths["store"], verify=False)
    mm = np.load(paths["npy"], mmap_mode="r")
    t_mm = torch.load(paths["pt"], mmap=True, weights_only=True)
    ids = np.random.default_rng(1).integers(0, n, size=(batches, batch))
    key_batches = [np.ascontiguousarray(keys[b]) for b in ids]
    id_tensors = [torch.from_numpy(b) for b in ids]
    # Same rows from every implementation (and a warm-up pass).
    ref = mm[ids[0]]
    got, found = store.gather(key_batches[0])
    assert found.all() and np.array_equal(got, ref) and np.array_equal(t_mm[id_tensors[0]].numpy(), ref)
    rows_view = store.rows
    buf = np.empty((batch, mm.shape[1]), mm.dtype)
    # "new": a fresh array per batch (its pages are faulted in every time); "into_buffer": one reused
    # batch buffer, as a training loop would hold.
    cases = {
        "store_gather_by_key/new": lambda: [store.gather(k) for k in key_batches],
        "numpy_memmap_by_index/new": lambda: [mm[b] for b in ids],
        "torch_mmap_by_index/new": lambda: [t_mm.index_select(0, b) for b in id_tensors],
        "store_find_then_take/new": lambda: [rows_view.take(store.find(k), axis=0) for k in key_batches],
        "store_gather_by_key/into_buffer": lambda: [store.gather(k, buf) for k in key_batches],
        "numpy_memmap_by_index/into_buffer": lambda: [np.take(mm, b, axis=0, out=buf) for b in ids],
    }
    # Rounds interleave the implementations so that load from other processes hits them alike.
    times: dict[str, list[float]] = {impl: [] for impl in cases}
    for _ in range(rounds):
        for impl, fn in cases.items():
            times[impl] += timed(fn, 1)
    out = []
    for impl, t in times.items():
        per_batch = statistics.median(t) / batches
        out.append({"op": "gather", "impl": impl, "rows": n, "batch": batch, "batches": batches, "rounds": rounds,
                    "median_us_per_batch": 1e6 * per_batch, "min_us_per_batch": 1e6 * min(t) / batches,
                    "rows_per_s": batch / per_batch})
    return out


def bench_scan(paths: dict[str, Path], n: int, width: int, chunk: int, rounds: int) -> list[dict]:
    store = Store(paths["store"], verify=False)
    mm = np.load(paths["npy"], mmap_mode="r")
    t_mm = torch.load(paths["pt"], mmap=True, weights_only=True)
    buf = np.empty((chunk, width), np.float16)
    tbuf = torch.from_numpy(buf)

    def scan_numpy(a):
        for i in range(0, n, chunk):
            part = a[i:i + chunk]
            np.copyto(buf[:len(part)], part)

    def scan_torch():
        for i in range(0, n, chunk):
            part = t_mm[i:i + chunk]
            tbuf[:len(part)].copy_(part)

    cases = {"store_rows_view": lambda: scan_numpy(store.rows), "numpy_memmap": lambda: scan_numpy(mm),
             "torch_mmap": scan_torch}
    times: dict[str, list[float]] = {impl: [] for impl in cases}
    for _ in range(rounds):  # interleaved, as for gather
        for impl, fn in cases.items():
            times[impl] += timed(fn, 1)
    out = []
    gbytes = n * width * 2 / 1e9
    for impl, t in times.items():
        med = statistics.median(t)
        out.append({"op": "scan", "impl": impl, "rows": n, "chunk": chunk, "rounds": rounds, "median_s": med,
                    "min_s": min(t), "GB_per_s": gbytes / med})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--small-rows", type=int, default=10_000)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/mmlop-bench-store"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.dir.mkdir(parents=True, exist_ok=True)
    need = 3.2 * args.rows * args.width * 2  # store + npy + pt, plus the temporary file of the store writer
    free = shutil.disk_usage(args.dir).free
    if free < need and not (args.dir / f"keys{args.rows}.npy").exists():
        sys.exit(f"{args.dir}: {free / 1e9:.1f} GB free, the benchmark files need {need / 1e9:.1f} GB")

    results = []
    for n in (args.small_rows, args.rows):
        t0 = time.perf_counter()
        paths = build(args.dir, n, args.width)
        print(f"{n} rows ready in {time.perf_counter() - t0:.1f} s", flush=True)
        results += bench_open(paths, n, repeats=20)
    results += bench_gather(paths, args.rows, batch=256, batches=100, rounds=15)
    results += bench_scan(paths, args.rows, args.width, chunk=16384, rounds=3)
    for r in results:
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    device = "cpu"
    out = write_result(f"store-{device}", {"benchmark": "bench_store", "width": args.width, "dtype": "float16",
                                            "page_cache": "warm", "results": results})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
