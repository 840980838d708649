"""Protocols over datasets and seeds: base-to-novel, all-class few-shot, cross-dataset and domain generalisation
(protocol.md §3-5). Writes the run folder: resolved config, per-run metrics, prompts-only checkpoints, summary.

Each protocol is one short method of :class:`Runner` (:meth:`~Runner.base_to_novel`, :meth:`~Runner.fewshot`,
:meth:`~Runner.transfer`) over shared services: the run folder (:class:`RunFolder`), data loading, training,
evaluation (:func:`mmlop.training.evaluate.evaluate_split`, the path ``mmlop eval`` takes too) and the zero-shot memo.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mmlop._io import atomic_write_bytes, atomic_write_json
from mmlop.config import ConfigError, PromptConfig, dotted_items
from mmlop.data.image import ImageDataset
from mmlop.data.loading import load_dataset
from mmlop.data.splits import DatasetSplits
from mmlop.data.transforms import build_train_transform
from mmlop.errors import RunExistsError, RunInterrupted
from mmlop.model.factory import BaseCLIP, load_base, registered_base
from mmlop.model.io import save_prompts
from mmlop.model.prompted import MMLoP
from mmlop.metrics import harmonic_mean
from mmlop.paths import safe_filename
from mmlop.templates import get_templates
from mmlop.training.checkpoint import CHECKPOINT_FILE, config_digest
from mmlop.training.config import RunConfig
from mmlop.training.distributed import DistInfo, barrier, init_from_env
from mmlop.training.evaluate import EvalConfig, evaluate_split
from mmlop.training.frozen import FrozenFeatures, view_lookup
from mmlop.training.loop import FitCheckpoint, FitConfig, FitData, autocast_context, fit
from mmlop.training.paper import compare_with_paper
from mmlop.training.progress import RunProgress
from mmlop.training.report import summarize, write_reports

__all__ = ["RUN_MARKER", "RunExistsError", "RunFolder", "RunInterrupted", "Runner", "base_label", "dataset_folder",
           "default_run_name", "resolve_device", "run", "run_title", "seed_everything"]

#: Written into every run folder mmlop creates; a folder without it is never written into.
RUN_MARKER = ".mmlop-run"


def _completed_epochs(run_dir: Path) -> int:
    """Epochs saved in ``run_dir``'s checkpoint (0 without one)."""
    from safetensors import safe_open

    file = run_dir / CHECKPOINT_FILE
    try:
        with safe_open(str(file), "pt") as f:
            return int((f.metadata() or {}).get("epoch", -1)) + 1
    except Exception:  # no checkpoint, or one cut short: the interrupt is the news, not the file
        return 0


PROTOCOL_TITLES = {"b2n": "base-to-novel", "fewshot": "few-shot", "xd": "cross-dataset",
                   "dg": "domain generalisation"}


def base_label(model: str, pretrained: str | None) -> str:
    """``ViT-B-16 (openai)``; a built-in base says so instead of printing a missing tag."""
    if registered_base(model) is not None:
        return f"{model} (built-in weights)"
    return f"{model} ({pretrained})" if pretrained else f"{model} (random weights)"


def run_title(config: RunConfig, run_dir: Path) -> str:
    """The title of a run's summary table and figure: protocol, base and run folder name."""
    protocol = PROTOCOL_TITLES.get(config.protocol, config.protocol)
    return f"{protocol}: {base_label(config.model, config.pretrained)} — {run_dir.name}"


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else the CPU) or a torch device name.

    Raises:
        ConfigError: CUDA is asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"RunConfig.device={name!r} but CUDA is not available; use 'cpu' or 'auto'")
    return device


def default_run_name(config: RunConfig) -> str:
    """``<protocol>-<first datasets>-<settings digest>``, a folder name that changes with any setting."""
    tag = "-".join(Path(d).stem or d for d in config.datasets[:3]) + ("-etc" if len(config.datasets) > 3 else "")
    safe = safe_filename(tag) or "run"
    return f"{config.protocol}-{safe}-{config_digest(config.to_dict())[:8]}"


class RunFolder:
    """The run folder's policy: never silently reused, finished (dataset, seed) results kept on resume.

    Args:
        config: The run's settings; the folder is ``<output_dir>/<name or default_run_name>``.
        resume: Whether an existing folder with the same settings may be continued.
        fixed_name: The name was chosen by the user: a folder holding other settings is an error. Otherwise (a
            preset's default name) such a run goes to ``<name>-<settings digest>`` instead.
    """

    def __init__(self, config: RunConfig, resume: bool, fixed_name: bool = False):
        self.config, self.resume, self.fixed_name = config, resume, fixed_name
        self.path = Path(config.output_dir) / (config.name or default_run_name(config))

    def prepare(self, write: bool) -> dict[str, Any] | None:
        """Claim the folder and write ``config.json`` (when ``write``, the main process); returns the stored
        summary when the folder already holds this run, finished (and ``resume`` is off).

        Raises:
            RunExistsError: the folder holds other settings under a user-chosen name, this run unfinished
                without ``resume``, or it is not a folder mmlop created.
        """
        resolved = self.config.to_dict()
        self._check_ours(resolved)
        cfg_path = self.path / "config.json"
        previous = _json_or_none(cfg_path) if cfg_path.exists() else None
        if cfg_path.exists() and previous != resolved:
            if self.fixed_name:
                raise RunExistsError(f"{self.path} holds a run with different settings ({_differences(previous, resolved)}); "
                                     "choose another --name, or use the same settings to resume (nothing was "
                                     "overwritten)")
            # A preset's default name: the same command with other settings gets its own folder.
            self.path = self.path.with_name(f"{self.path.name}-{config_digest(resolved)[:8]}")
            self._check_ours(resolved)
            cfg_path = self.path / "config.json"
            previous = _json_or_none(cfg_path) if cfg_path.exists() else None
            if cfg_path.exists() and previous != resolved:
                raise RunExistsError(f"{self.path} holds a run with different settings "
                                     f"({_differences(previous, resolved)}); choose a --name")
        if cfg_path.exists():
            summary_path = self.path / "summary.json"
            if summary_path.is_file() and not self.resume:
                return json.loads(summary_path.read_text())
            # A run that stopped before any seed began training (a bad target, a full disk) simply runs again.
            if not self.resume and _started(self.path):
                raise RunExistsError(f"{self.path} holds this run unfinished; pass --resume to continue it, or "
                                     "choose another --name")
        elif self.resume:
            warnings.warn(f"--resume: {self.path} holds no run to resume; starting a new run there", stacklevel=4)
        if write:
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path / RUN_MARKER, b"mmlop-run/1\n")
            atomic_write_json(cfg_path, resolved)
        return None

    def _check_ours(self, resolved: dict[str, Any]) -> None:
        """Refuses a run folder that mmlop did not create: never write into a user's folder."""
        if self.path.exists() and not self.path.is_dir():
            raise RunExistsError(f"{self.path} is a file, not a run folder; choose another --name or --output-dir")
        cfg_path = self.path / "config.json"
        # A run folder written before the marker existed is recognised by a config.json equal to this run's.
        ours = (self.path / RUN_MARKER).is_file() or (cfg_path.is_file() and _json_or_none(cfg_path) == resolved)
        if self.path.is_dir() and not ours and any(self.path.iterdir()):
            raise RunExistsError(f"{self.path} exists and is not an mmlop run folder (no {RUN_MARKER} file); choose "
                                 "another --name or --output-dir (nothing was written there)")

    def seed_dir(self, dataset: str, seed: int) -> Path:
        """Where one (dataset, seed) run keeps its checkpoint, metrics, prompts and results."""
        return self.path / dataset_folder(dataset) / f"seed{seed}"

    def finished(self, dataset: str, seed: int) -> dict[str, Any] | None:
        """The results of a finished (dataset, seed) run when resuming, else None."""
        done = self.seed_dir(dataset, seed) / "results.json"
        return json.loads(done.read_text()) if self.resume and done.exists() else None

    def feature_store_dir(self) -> Path | None:
        """The frozen-feature store folder of ``config.feature_cache`` (None when off)."""
        c = self.config
        if not c.feature_cache:
            return None
        return Path(c.output_dir) / "feature_cache" if c.feature_cache == "auto" else Path(c.feature_cache)


class Runner:
    """Runs one :class:`RunConfig`. Use :func:`mmlop.train` rather than this class directly.

    Args:
        config: The run.
        resume: Continue the run folder's unfinished (dataset, seed) pairs and rewrite its summary.
        base: A base model to use instead of loading ``config.model``.
        fixed_name: See :class:`RunFolder`.
    """

    def __init__(self, config: RunConfig, *, resume: bool = False, base: BaseCLIP | None = None,
                 fixed_name: bool = False):
        self.config, self.resume = config, resume
        self.device = resolve_device(config.device)
        self.dist = init_from_env(str(self.device)) if base is None else DistInfo()
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        autocast_context(self.device, config.precision)  # e.g. amp_fp16 on the CPU is refused before any work
        self._base = base
        self.folder = RunFolder(config, resume, fixed_name)
        self.templates = get_templates(config.method.teacher.templates)
        self.eval_config = EvalConfig.of_run(config)
        self._zero_shot_memo: dict[tuple[str, str], float] = {}
        self._warned: set[str] = set()
        self.progress = RunProgress(0, enabled=False)

    @property
    def dir(self) -> Path:
        """The run folder (``<name>-<digest>`` when a preset's default name holds other settings)."""
        return self.folder.path

    @property
    def base(self) -> BaseCLIP:
        """The frozen base, loaded on first use: re-running a finished run only reads its summary."""
        if self._base is None:
            self._base = load_base(self.config.model, self.config.pretrained, device=self.device)
        return self._base

    def _once(self, fn, *args, **kwargs):
        """Call ``fn`` and pass on each warning it raises once per run (base and novel loads repeat them)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = fn(*args, **kwargs)
        for w in caught:
            text = str(w.message)
            if text not in self._warned:
                self._warned.add(text)
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return out

    def _trains(self) -> bool:
        """Whether the method has epochs to run (the zero-shot baseline has none)."""
        return self.config.optim.epochs > 0 and self.config.method.prompt.depth > 0

    # Services ------------------------------------------------------------------------------------------------
    def _load(self, name: str, seed: int, subsample: str, shots: int | None = None) -> DatasetSplits:
        c = self.config
        return self._once(load_dataset, name, c.root, num_shots=c.shots if shots is None else shots, seed=seed,
                          subsample=subsample, fewshot_source=c.fewshot_source, cache_dir=c.cache_dir or None,
                          allow_duplicates=c.allow_duplicates, allow_train_test_overlap=c.allow_train_test_overlap)

    def _check_data(self) -> None:
        """Reads every dataset and target once before anything is written or trained, so that a missing or
        malformed split (a target's test images included) fails now, not after hours of training."""
        c = self.config
        for name in (*c.datasets, *c.targets):
            self._load(name, c.seeds[0], "all", shots=0)

    def _evaluate(self, model: MMLoP, splits: DatasetSplits, desc: str = "eval") -> float:
        return evaluate_split(model, splits, self.eval_config, self.device, desc=desc)["accuracy"]

    def _zero_shot(self, name: str, part: str, splits: DatasetSplits) -> float:
        """Zero-shot CLIP accuracy, memoised per (dataset, class subset): the test split and the class sets do not
        depend on the seed."""
        key = (name, part)
        if key not in self._zero_shot_memo:
            model = MMLoP(self.base, PromptConfig.zero_shot())
            label = {"all": "", "new": " novel"}.get(part, f" {part}")
            self._zero_shot_memo[key] = self._evaluate(model, splits, desc=f"zero-shot {name}{label}")
        return self._zero_shot_memo[key]

    def _train(self, splits: DatasetSplits, seed: int, run_dir: Path, dataset: str = "") -> MMLoP:
        c = self.config
        seed_everything(seed)
        model = MMLoP(self.base, c.method.prompt, generator=torch.Generator().manual_seed(seed)).to(self.device)
        if c.grad_checkpoint:
            model.use_checkpoint = True
        if c.optim.epochs == 0 or model.num_trainable_parameters() == 0:
            self.progress.skip(c.optim.epochs if self._trains() else 0)
            return model
        features = FrozenFeatures(model, self.folder.feature_store_dir())
        g0 = features.text(splits.classnames, self.templates, c.method.teacher.templates, c.method.teacher.average)
        tf = build_train_transform(self.base.image_size, self.base.mean, self.base.std, scale=c.train_crop_scale)
        train_ds = ImageDataset(splits.train, tf)
        data = FitData(train_ds, splits.classnames, g0)
        if c.views_per_image > 0:
            transform_id = f"{tf!r}|size={self.base.image_size}|mean={self.base.mean}|std={self.base.std}"
            view_keys = features.image_view_keys(splits.train.paths, transform_id, seed, c.views_per_image)
            table = features.image_views(train_ds, view_keys, batch_size=c.test_batch_size, device=self.device,
                                         num_workers=c.num_workers)
            data = FitData(train_ds, splits.classnames, g0, frozen_image_fn=view_lookup(table), view_keys=view_keys)
        digest = config_digest({"run": c.to_dict(), "dataset": splits.key, "seed": seed, "shots": c.shots,
                                "classes": list(splits.classnames)})
        try:
            fit(model, data, FitConfig(c.optim, c.method.loss, seed, precision=c.precision, text_chunk=c.text_chunk,
                                       num_workers=c.num_workers, progress=self.progress),
                FitCheckpoint(run_dir, digest, resume=self.resume), device=self.device, dist_info=self.dist)
        except KeyboardInterrupt:
            raise RunInterrupted(_completed_epochs(run_dir) + 1, run_dir) from None
        if self.dist.is_main:
            from mmlop.training.figures import save_training_curves

            save_training_curves(run_dir / "metrics.jsonl", run_dir / "curves.png",
                                 title=f"{dataset or splits.key} seed {seed} — {self.dir.name}")
            save_prompts(model, run_dir / "prompts", method=c.method, overwrite=True,
                         extra={"dataset": splits.key, "seed": seed, "shots": c.shots, "protocol": c.protocol,
                                "precision": c.precision})
        return model

    # Protocols: train on the source, then (main process only) evaluate --------------------------------------
    def _source(self, dataset: str, seed: int, run_dir: Path, subsample: str) -> tuple[DatasetSplits, MMLoP | None]:
        """Load and train on the source split; the model is returned to the main process only, the one that
        evaluates (None elsewhere)."""
        split = self._load(dataset, seed, subsample)
        model = self._train(split, seed, run_dir, dataset)
        return split, (model if self.dist.is_main else None)

    def base_to_novel(self, dataset: str, seed: int, run_dir: Path) -> dict[str, Any]:
        """Train on the base half of the classes; score base and novel test images, each among its own half."""
        base_split, model = self._source(dataset, seed, run_dir, "base")
        if model is None:
            return {}
        novel_split = self._load(dataset, seed, "new")
        tag = f"{dataset} seed {seed}"
        result = {"base": self._evaluate(model, base_split, desc=f"eval {tag} base"),
                  "novel": self._evaluate(model, novel_split, desc=f"eval {tag} novel")}
        result["hm"] = harmonic_mean(result["base"], result["novel"])
        if self.config.zero_shot:
            result["zs_base"] = self._zero_shot(dataset, "base", base_split)
            result["zs_novel"] = self._zero_shot(dataset, "new", novel_split)
        result["train_used"] = _per_class(base_split.train)
        return result

    def fewshot(self, dataset: str, seed: int, run_dir: Path) -> dict[str, Any]:
        """Train and score on all classes."""
        split, model = self._source(dataset, seed, run_dir, "all")
        if model is None:
            return {}
        result = {"accuracy": self._evaluate(model, split, desc=f"eval {dataset} seed {seed}")}
        if self.config.zero_shot:
            result["zs_accuracy"] = self._zero_shot(dataset, "all", split)
        result["train_used"] = _per_class(split.train)
        return result

    def transfer(self, dataset: str, seed: int, run_dir: Path) -> dict[str, Any]:
        """Cross-dataset / domain generalisation: one source model per seed, scored on every target."""
        split, model = self._source(dataset, seed, run_dir, "all")
        if model is None:
            return {}
        result: dict[str, Any] = {"source": {"accuracy": self._evaluate(model, split, desc=f"eval {dataset} seed {seed}")},
                                  "targets": {}}
        for target in self.config.targets:
            t_split = self._load(target, seed, "all", shots=0)
            if len(t_split.test) == 0:  # a custom target folder without splits: all of it is test data
                t_split = dataclasses.replace(t_split, test=t_split.train)
            row = {"accuracy": self._evaluate(model, t_split, desc=f"eval {target} seed {seed}")}
            if self.config.zero_shot:
                row["zs_accuracy"] = self._zero_shot(target, "all", t_split)
            result["targets"][target] = row
        result["train_used"] = _per_class(split.train)  # fewer than asked when a class has fewer images
        return result

    def _protocol(self) -> Callable[[str, int, Path], dict[str, Any]]:
        return {"b2n": self.base_to_novel, "fewshot": self.fewshot, "xd": self.transfer,
                "dg": self.transfer}[self.config.protocol]

    # Driver --------------------------------------------------------------------------------------------------
    def _one(self, dataset: str, seed: int) -> dict[str, Any]:
        self.progress.start(dataset, seed)
        finished = self.folder.finished(dataset, seed)
        if finished is not None:
            self.progress.skip(self.config.optim.epochs if self._trains() else 0)
            return finished
        run_dir = self.folder.seed_dir(dataset, seed)
        result = self._protocol()(dataset, seed, run_dir)
        if self.dist.is_main:
            atomic_write_json(run_dir / "results.json", result)
            self.progress.line(f"{dataset} seed {seed}: " + _result_line(result))
        barrier(self.dist)
        return result

    def run(self) -> dict[str, Any]:
        """Run every (dataset, seed) pair, then write and return the summary (a finished run's stored summary)."""
        c = self.config
        if self.resume or not (self.dir / "summary.json").is_file():  # a finished run is only shown: no reads
            self._check_data()
        finished = self.folder.prepare(write=self.dist.is_main)
        if finished is not None:
            if not c.quiet and self.dist.is_main:
                print(f"{self.dir} already holds this run, finished; showing its summary (pass --resume to "
                      "re-evaluate it, or --name for a new run)", file=sys.stderr)
            return finished
        note = c.optim.schedule_warning() if self._trains() else None
        if note:
            warnings.warn(note, stacklevel=2)
        epochs = c.optim.epochs if self._trains() else 0
        self.progress = RunProgress(len(c.datasets) * len(c.seeds) * epochs,
                                    enabled=not c.quiet and self.dist.is_main)
        try:
            return self._run_all()
        finally:
            self.progress.close()

    def _run_all(self) -> dict[str, Any]:
        c = self.config
        per: dict[str, dict[int, dict]] = {}
        transfer = c.protocol in ("xd", "dg")
        used: dict[str, dict[str, int]] = {}
        for dataset in c.datasets:
            for seed in c.seeds:
                res = self._one(dataset, seed)
                if not res:  # another process's share: only the main process evaluates
                    continue
                if "train_used" in res:
                    u = res["train_used"]
                    prev = used.setdefault(dataset, dict(u))
                    prev["min_per_class"] = min(prev["min_per_class"], u["min_per_class"])
                    prev["max_per_class"] = max(prev["max_per_class"], u["max_per_class"])
                if transfer:
                    per.setdefault(dataset, {})[seed] = {**res["source"]}
                    for t, row in res["targets"].items():
                        per.setdefault(t, {})[seed] = row
                else:
                    per.setdefault(dataset, {})[seed] = res
        if not self.dist.is_main:  # only the main process evaluates, so only it has results to summarise
            return {"protocol": c.protocol, "run_dir": str(self.dir)}
        source = c.datasets[0] if transfer and c.datasets else None
        summary = summarize(c.protocol, per, source=source)
        summary["run_dir"] = str(self.dir)
        summary["paper"] = compare_with_paper(c, summary, base=self.base.describe())
        summary["shots"] = {"requested": c.shots, "used": used}
        short = {d: u["min_per_class"] for d, u in used.items() if c.shots > 0 and u["min_per_class"] < c.shots}
        if short:
            summary["warnings"] = summary.get("warnings", []) + [
                f"--shots {c.shots}: {d} has classes with only {n} training images, so the run used {_span(used[d])} "
                "images per class" for d, n in short.items()]
        write_reports(summary, self.dir, title=run_title(c, self.dir))
        return summary


def _result_line(result: dict[str, Any]) -> str:
    """One log line of a (dataset, seed) result: ``base 81.20, novel 70.10, HM 75.21 (zero-shot HM 70.00)``."""
    if "source" in result:
        parts = [f"source {result['source']['accuracy']:.2f}"]
        parts += [f"{t} {row['accuracy']:.2f}" for t, row in result["targets"].items()]
        return ", ".join(parts)
    if "hm" in result:
        zs = f" (zero-shot HM {harmonic_mean(result['zs_base'], result['zs_novel']):.2f})" if "zs_base" in result else ""
        return f"base {result['base']:.2f}, novel {result['novel']:.2f}, HM {result['hm']:.2f}{zs}"
    zs = f" (zero-shot {result['zs_accuracy']:.2f})" if "zs_accuracy" in result else ""
    return f"accuracy {result['accuracy']:.2f}{zs}"


def dataset_folder(dataset: str) -> str:
    """The run sub-folder of a dataset: the last part of its name, plus a digest of the full path for a custom
    dataset path, so that ``a/pets`` and ``b/pets`` never share (and overwrite) one folder. Built-in and
    registered names (``dtd``, ``world/colours``) are unique already and stay as they are read."""
    from mmlop.data.catalog import DATASETS, registered_reader

    stem = Path(dataset).name or dataset
    safe = safe_filename(stem, keep="-_.") or "dataset"
    if safe.strip(".") == "":  # "." and ".." name folders, not datasets
        safe = "dataset"
    if dataset not in DATASETS and registered_reader(dataset) is None:
        safe += "-" + hashlib.sha256(os.fsencode(os.path.abspath(dataset))).hexdigest()[:8]
    return safe


def _json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _per_class(items) -> dict[str, int]:
    """Training images actually used: total and the smallest and largest count over classes."""
    counts = np.bincount(np.asarray(items.labels)) if len(items) else np.zeros(1, dtype=np.int64)
    counts = counts[counts > 0] if counts.any() else counts
    return {"images": int(len(items)), "min_per_class": int(counts.min()), "max_per_class": int(counts.max())}


def _span(used: dict[str, int]) -> str:
    lo, hi = used["min_per_class"], used["max_per_class"]
    return str(lo) if lo == hi else f"{lo} to {hi}"


def _started(folder: Path) -> bool:
    """Whether any seed of the run in ``folder`` began training (a checkpoint) or finished (results)."""
    return any(True for _ in folder.rglob("results.json")) or any(True for _ in folder.rglob(CHECKPOINT_FILE))


def _differences(before: Any, now: dict, limit: int = 5) -> str:
    """``key: run value -> this value`` for the settings that differ (the first ``limit``)."""
    if not isinstance(before, dict):
        return "its config.json is not a settings object"
    a, b = dotted_items(before), dotted_items(now)
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))
    shown = [f"{k}: {a.get(k, '<unset>')!r} in the run, {b.get(k, '<unset>')!r} now" for k in keys[:limit]]
    return "; ".join(shown) + (f"; and {len(keys) - limit} more" if len(keys) > limit else "")


def run(config: RunConfig, *, resume: bool = False, fixed_name: bool = False) -> dict[str, Any]:
    """Run a configuration and return its summary (also written to the run folder).

    A folder that already holds this run, finished, is not run again: its summary is returned (``resume`` re-reads
    its results and rewrites the reports). See :class:`RunFolder` for ``fixed_name``.

    Raises:
        RunExistsError: the run folder holds other settings, or a run and ``resume`` is off.
        TrainingDivergedError: a run's loss became non-finite.
    """
    return Runner(config, resume=resume, fixed_name=fixed_name).run()
