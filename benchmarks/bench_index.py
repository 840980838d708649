"""Native dataset index vs a pure-Python ``os.scandir`` + ``json`` baseline.

Generates (once, reused) under /tmp a class-per-folder tree of 1000 classes x 200 empty files (200,000 files,
ImageNet's class count) and a CoOp split JSON listing them, then runs each variant in its own subprocess:
wall time (best of ``--repeats``) and peak memory (rise of ``ru_maxrss`` over the post-import baseline, which
sees Rust allocations too; tracemalloc peak for the Python side). Writes rows to
``benchmarks/results/index-<date>.json``.

The scan runs three native ways: a plain scan (every folder read), through a warm listing cache with the tree
unchanged (``mmlop.data.scan``; the cache is filled first by another process), and through the cache with one
class folder changed before each call (that folder is read again, the other 999 reused).

Usage: PYTHONPATH=python python benchmarks/bench_index.py [--classes 1000 --per-class 200 --repeats 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc

TREE = "/tmp/mmlop-bench-index"


def make_tree(classes: int, per_class: int) -> str:
    root = f"{TREE}-{classes}x{per_class}"
    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        return root
    entries = []
    for c in range(classes):
        d = os.path.join(root, "tree", f"n{c:08d}")
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            name = f"n{c:08d}_{(i * 7919) % 100003:06d}.JPEG"  # creation order differs from sorted order
            open(os.path.join(d, name), "wb").close()
            entries.append([f"n{c:08d}/{name}", c, f"class_{c}"])
    with open(os.path.join(root, "split.json"), "w") as f:
        json.dump({"train": entries, "val": [], "test": []}, f, indent=4, separators=(",", ": "))
    open(done, "w").close()
    return root


def python_scan(root: str):
    """The baseline: what a pure-Python reader does (sorted scandir, one tuple per item)."""
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    items = []
    for label, c in enumerate(classes):
        names = sorted(e.name for e in os.scandir(os.path.join(root, c)) if e.is_file() and not e.name.startswith("."))
        items.extend((f"{c}/{n}", label) for n in names)
    return classes, items


def python_split(path: str):
    with open(path) as f:
        obj = json.load(f)
    out, names = {}, {}
    for split in ("train", "val", "test"):
        rows = []
        for i, (rel, label, name) in enumerate(obj[split]):
            if not isinstance(label, int) or label < 0:
                raise ValueError(f"{path}: entry {i} of {split}: bad label")
            if names.setdefault(label, name) != name:
                raise ValueError(f"{path}: entry {i} of {split}: class name conflict")
            rows.append((rel, label))
        out[split] = rows
    return out, [names[i] for i in range(len(names))]


def native_scan(root: str):
    from mmlop.data import Items
    from mmlop import _native

    classes, buf, offsets, labels = _native.scan_class_folders(root)
    return classes, Items.from_index(root, buf, offsets, labels)


def native_scan_cached(root: str):
    """Through the listing cache (``MMLOP_INDEX_CACHE`` is set to a bench folder filled beforehand)."""
    from mmlop.data import Items
    from mmlop.data.scan import scan_class_folders

    classes, buf, offsets, labels = scan_class_folders(root)
    return classes, Items.from_index(root, buf, offsets, labels)


def toggle_one_file(root: str) -> None:
    """Adds, or removes again, one file in the first class folder: one folder changed since the last scan."""
    extra = os.path.join(root, sorted(os.listdir(root))[0], "zz_bench_extra.JPEG")
    if os.path.exists(extra):
        os.remove(extra)
    else:
        open(extra, "wb").close()


def native_split(path: str):
    from mmlop import _native

    return _native.read_split_json(path)


VARIANTS = {
    "scan/python": (python_scan, "tree"),
    "scan/native": (native_scan, "tree"),
    "scan/native-cached": (native_scan_cached, "tree"),
    "scan/native-cached-1-changed": (native_scan_cached, "tree"),
    "split_json/python": (python_split, "split.json"),
    "split_json/native": (native_split, "split.json"),
}


def worker(variant: str, root: str, repeats: int) -> dict:
    fn, target = VARIANTS[variant]
    import numpy  # noqa: F401  (import cost outside the measurement for both sides)
    import mmlop.data  # noqa: F401

    arg = os.path.join(root, target)
    setup = (lambda: toggle_one_file(arg)) if variant.endswith("-1-changed") else (lambda: None)
    setup()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    result = fn(arg)
    first = time.perf_counter() - t0
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = len(result[1]) if variant.startswith("scan") else len(result[0]["train"][2] if "native" in variant else result[0]["train"])
    del result
    times = [first]
    for _ in range(repeats - 1):
        setup()
        t0 = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
    if variant.endswith("-1-changed") and repeats % 2:  # an odd number of toggles left the extra file: remove it
        toggle_one_file(arg)
    return {"variant": variant, "items": n, "best_s": min(times), "times_s": times,
            "peak_rss_rise_mib": (peak_rss - base_rss) / 1024, "tracemalloc_peak_mib": py_peak / 2**20}


def meta() -> dict:
    import numpy

    from mmlop import _native

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"device": f"cpu: {cpu} ({os.cpu_count()} logical cores)", "commit": commit,
            "python": platform.python_version(), "numpy": numpy.__version__, "mmlop_native": _native.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", choices=sorted(VARIANTS))
    ap.add_argument("--root")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.root, args.repeats)))
        return
    root = make_tree(args.classes, args.per_class)
    from mmlop.data.scan import RACY_WINDOW_S

    tree = os.path.join(root, "tree")
    newest = max(os.stat(os.path.join(tree, d)).st_ctime for d in os.listdir(tree))
    time.sleep(max(0.0, newest + RACY_WINDOW_S + 0.5 - time.time()))  # only settled folders are cached
    env = {**os.environ, "MMLOP_INDEX_CACHE": os.path.join(root, "index-cache")}
    rows = []
    for variant in VARIANTS:
        cmd = [sys.executable, __file__, "--worker", variant, "--root", root, "--repeats", str(args.repeats)]
        if variant == "scan/native-cached":  # fill the cache in another process, so its peak memory is not ours
            subprocess.run(cmd[:-1] + ["1"], capture_output=True, text=True, check=True, env=env)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1])
    summary = {}
    for task, group, k in (("scan", "scan", "native"), ("scan_cached", "scan", "native-cached"),
                            ("scan_cached_1_changed", "scan", "native-cached-1-changed"), ("split_json", "split_json", "native")):
        py, nat = (next(r for r in rows if r["variant"] == f"{group}/{v}") for v in ("python", k))
        summary[task] = {"speedup": py["best_s"] / nat["best_s"],
                         "peak_rss_ratio_python_over_native": py["peak_rss_rise_mib"] / max(nat["peak_rss_rise_mib"], 1e-9)}
    out = {"benchmark": "index", **meta(), "files": args.classes * args.per_class, "rows": rows, "summary": summary}
    print(json.dumps(summary, indent=1))
    path = args.out or os.path.join(os.path.dirname(__file__), "results", f"index-{datetime.date.today().isoformat()}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(path + ".tmp", path)
    print("wrote", path)


if __name__ == "__main__":
    main()
