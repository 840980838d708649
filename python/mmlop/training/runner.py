"""Protocols over datasets and seeds: base-to-novel, all-class few-shot, cross-dataset and domain generalisation
(protocol.md §3-5). Writes the run folder: resolved config, per-run metrics, prompts-only checkpoints, summary."""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmlop.errors import MmlopError
from mmlop._io import atomic_write_json
from mmlop.config import ConfigError
from mmlop.model.factory import BaseCLIP, load_base
from mmlop.model.io import save_prompts
from mmlop.model.prompted import MMLoP
from mmlop.templates import get_templates
from mmlop.training.checkpoint import config_digest
from mmlop.training.config import RunConfig
from mmlop.training.distributed import DistInfo, barrier, init_from_env
from mmlop.training.evaluate import accuracy
from mmlop.training.features import FrozenFeatures, view_lookup
from mmlop.training.loop import autocast_context, fit
from mmlop.training.paper import compare_with_paper
from mmlop.training.progress import RunProgress
from mmlop.training.report import harmonic_mean, summarize, write_reports


class RunExistsError(MmlopError, FileExistsError):
    """The run folder already holds a run with other settings, or an unfinished run and ``resume`` was not asked."""


PROTOCOL_TITLES = {"b2n": "base-to-novel", "fewshot": "few-shot", "xd": "cross-dataset",
                   "dg": "domain generalisation"}


def base_label(model: str, pretrained: str | None) -> str:
    """``ViT-B-16 (openai)``; a built-in base says so instead of printing a missing tag."""
    from mmlop.model.factory import _BUILTIN_BASES

    if model in _BUILTIN_BASES:
        return f"{model} (built-in weights)"
    return f"{model} ({pretrained})" if pretrained else f"{model} (random weights)"


def run_title(config: RunConfig, run_dir: Path) -> str:
    """The title of a run's summary table and figure: protocol, base and run folder name."""
    protocol = PROTOCOL_TITLES.get(config.protocol, config.protocol)
    return f"{protocol}: {base_label(config.model, config.pretrained)} — {run_dir.name}"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"RunConfig.device={name!r} but CUDA is not available; use 'cpu' or 'auto'")
    return device


def default_run_name(config: RunConfig) -> str:
    tag = "-".join(Path(d).stem or d for d in config.datasets[:3]) + ("-etc" if len(config.datasets) > 3 else "")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in tag) or "run"
    return f"{config.protocol}-{safe}-{config_digest(config.to_dict())[:8]}"


class Runner:
    """Runs one :class:`RunConfig`. Use :func:`mmlop.train` rather than this class directly.

    Args:
        config: The run.
        resume: Continue the run folder's unfinished (dataset, seed) pairs and rewrite its summary.
        base: A base model to use instead of loading ``config.model``.
        fixed_name: The name was chosen by the user: a folder holding other settings is an error. Otherwise (a
            preset's default name) such a run goes to ``<name>-<settings digest>`` instead.
    """

    def __init__(self, config: RunConfig, *, resume: bool = False, base: BaseCLIP | None = None,
                 fixed_name: bool = False):
        self.config, self.resume, self.fixed_name = config, resume, fixed_name
        self.device = resolve_device(config.device)
        self.dist = init_from_env(str(self.device)) if base is None else DistInfo()
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self._base = base
        self.dir = Path(config.output_dir) / (config.name or default_run_name(config))
        self.templates = get_templates(config.method.teacher.templates)
        self._data = _data_api()
        self._warned: set[str] = set()
        self.progress = RunProgress(0, enabled=False)

    @property
    def base(self) -> BaseCLIP:
        """The frozen base, loaded on first use: re-running a finished run only reads its summary."""
        if self._base is None:
            self._base = load_base(self.config.model, self.config.pretrained, device=self.device)
        return self._base

    # Setup ---------------------------------------------------------------------------------------------------
    def _prepare_folder(self) -> dict[str, Any] | None:
        """Claim the run folder; returns the stored summary when it already holds this run, finished.

        Raises:
            RunExistsError: the folder holds other settings under a user-chosen name, or this run unfinished
                without ``resume``.
        """
        resolved = self.config.to_dict()
        cfg_path = self.dir / "config.json"
        if cfg_path.exists() and json.loads(cfg_path.read_text()) != resolved:
            if self.fixed_name:
                raise RunExistsError(f"{self.dir} holds a run with different settings; choose another --name "
                                     "(nothing was overwritten)")
            # A preset's default name: the same command with other settings gets its own folder.
            self.dir = self.dir.with_name(f"{self.dir.name}-{config_digest(resolved)[:8]}")
            cfg_path = self.dir / "config.json"
            if cfg_path.exists() and json.loads(cfg_path.read_text()) != resolved:
                raise RunExistsError(f"{self.dir} holds a run with different settings; choose a --name")
        if cfg_path.exists():
            summary_path = self.dir / "summary.json"
            if summary_path.is_file() and not self.resume:
                return json.loads(summary_path.read_text())
            if not self.resume:
                raise RunExistsError(f"{self.dir} holds this run unfinished; pass --resume to continue it, or "
                                     "choose another --name")
        if self.dist.is_main:
            atomic_write_json(cfg_path, resolved)
        return None

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

    def _cache_folder(self) -> Path | None:
        c = self.config
        if not c.feature_cache:
            return None
        return Path(c.output_dir) / "feature_cache" if c.feature_cache == "auto" else Path(c.feature_cache)

    def _autocast(self):
        """The training loop's autocast rule, as a factory for the evaluation loop."""
        return lambda: autocast_context(self.device, self.config.precision)

    def _load(self, name: str, seed: int, subsample: str, shots: int | None = None):
        c = self.config
        return self._once(self._data.load_dataset, name, c.root, num_shots=c.shots if shots is None else shots,
                          seed=seed, subsample=subsample, fewshot_source=c.fewshot_source,
                          cache_dir=c.cache_dir or None)

    def _test_set(self, splits):
        tf = self._data.build_test_transform(self.base.image_size, self.base.mean, self.base.std)
        return self._data.ImageDataset(splits.test, tf), [int(y) for y in splits.test.labels]

    def _evaluate(self, model: MMLoP, splits, *, zero_shot: bool = False, desc: str = "eval") -> float:
        ds, labels = self._test_set(splits)
        template = (splits.template or "a photo of a {}.") if (zero_shot or model.config.text_depth == 0) else None
        c = self.config
        return accuracy(model, ds, labels, splits.classnames, udc=c.method.loss.udc_at_test,
                        teacher=c.method.teacher, zero_shot_template=template, batch_size=c.test_batch_size,
                        num_workers=c.num_workers, device=self.device, max_per_class=c.max_test_per_class,
                        autocast=self._autocast(), progress=not c.quiet, desc=desc)["accuracy"]

    def _zero_shot(self, splits, desc: str = "zero-shot") -> float:
        from mmlop.config import PromptConfig

        return self._evaluate(MMLoP(self.base, PromptConfig.zero_shot()), splits, zero_shot=True, desc=desc)

    def _trains(self) -> bool:
        """Whether the method has epochs to run (the zero-shot baseline has none)."""
        return self.config.optim.epochs > 0 and self.config.method.prompt.depth > 0

    # Training ------------------------------------------------------------------------------------------------
    def _train(self, splits, seed: int, run_dir: Path, shots: int, dataset: str = "") -> MMLoP:
        c = self.config
        seed_everything(seed)
        model = MMLoP(self.base, c.method.prompt, generator=torch.Generator().manual_seed(seed)).to(self.device)
        if c.grad_checkpoint:
            model.use_checkpoint = True
        if c.optim.epochs == 0 or model.num_trainable_parameters() == 0:
            self.progress.skip(c.optim.epochs if self._trains() else 0)
            return model
        features = FrozenFeatures(model, self._cache_folder())
        g0 = features.text(splits.classnames, self.templates, c.method.teacher.templates, c.method.teacher.average)
        tf = self._data.build_train_transform(self.base.image_size, self.base.mean, self.base.std,
                                              scale=c.train_crop_scale)
        train_ds = self._data.ImageDataset(splits.train, tf)
        view_keys = frozen_fn = None
        if c.views_per_image > 0:
            transform_id = f"{tf!r}|size={self.base.image_size}|mean={self.base.mean}|std={self.base.std}"
            view_keys = features.image_view_keys(splits.train.paths, transform_id, seed, c.views_per_image)
            table = features.image_views(train_ds, view_keys, batch_size=c.test_batch_size, device=self.device,
                                         num_workers=c.num_workers)
            frozen_fn = view_lookup(table)
        digest = config_digest({"run": c.to_dict(), "dataset": splits.key, "seed": seed, "shots": shots,
                                "classes": list(splits.classnames)})
        fit(model, train_ds, [int(y) for y in splits.train.labels], splits.classnames, g0, optim=c.optim,
            loss=c.method.loss, seed=seed, run_dir=run_dir, digest=digest, resume=self.resume, device=self.device,
            precision=c.precision, text_chunk=c.text_chunk, num_workers=c.num_workers, dist_info=self.dist,
            frozen_image_fn=frozen_fn, view_keys=view_keys, progress=self.progress)
        if self.dist.is_main:
            from mmlop.training.figures import save_training_curves

            save_training_curves(run_dir / "metrics.jsonl", run_dir / "curves.png",
                                 title=f"{dataset or splits.key} seed {seed} — {self.dir.name}")
            save_prompts(model, run_dir / "prompts", method=c.method, overwrite=True,
                         extra={"dataset": splits.key, "seed": seed, "shots": shots, "protocol": c.protocol})
        return model

    def _one(self, dataset: str, seed: int, zs_cache: dict) -> dict[str, Any]:
        c = self.config
        run_dir = self.dir / _safe(dataset) / f"seed{seed}"
        done = run_dir / "results.json"
        self.progress.start(dataset, seed)
        if done.exists() and self.resume:
            self.progress.skip(c.optim.epochs if self._trains() else 0)
            return json.loads(done.read_text())
        result: dict[str, Any] = {}
        tag = f"{dataset} seed {seed}"
        if c.protocol == "b2n":
            base_split = self._load(dataset, seed, "base")
            model = self._train(base_split, seed, run_dir, c.shots, dataset)
            if self.dist.is_main:
                novel_split = self._load(dataset, seed, "new")
                result = {"base": self._evaluate(model, base_split, desc=f"eval {tag} base"),
                          "novel": self._evaluate(model, novel_split, desc=f"eval {tag} novel")}
                result["hm"] = harmonic_mean(result["base"], result["novel"])
                if c.zero_shot:
                    if dataset not in zs_cache:  # the test split and class sets do not depend on the seed
                        zs_cache[dataset] = {"zs_base": self._zero_shot(base_split, f"zero-shot {dataset} base"),
                                             "zs_novel": self._zero_shot(novel_split,
                                                                         f"zero-shot {dataset} novel")}
                    result.update(zs_cache[dataset])
        elif c.protocol == "fewshot":
            split = self._load(dataset, seed, "all")
            model = self._train(split, seed, run_dir, c.shots, dataset)
            if self.dist.is_main:
                result = {"accuracy": self._evaluate(model, split, desc=f"eval {tag}")}
                if c.zero_shot:
                    if dataset not in zs_cache:  # setdefault would evaluate zero-shot again for every seed
                        zs_cache[dataset] = {"zs_accuracy": self._zero_shot(split, f"zero-shot {dataset}")}
                    result.update(zs_cache[dataset])
        else:  # xd / dg: one source model per seed, evaluated on every target
            split = self._load(dataset, seed, "all")
            model = self._train(split, seed, run_dir, c.shots, dataset)
            if self.dist.is_main:
                result = {"source": {"accuracy": self._evaluate(model, split, desc=f"eval {tag}")}, "targets": {}}
                for target in c.targets:
                    t_split = self._load(target, seed, "all", shots=0)
                    if len(t_split.test) == 0:  # a custom target folder without splits: all of it is test data
                        t_split = dataclasses.replace(t_split, test=t_split.train)
                    row = {"accuracy": self._evaluate(model, t_split, desc=f"eval {target} seed {seed}")}
                    if c.zero_shot:
                        if target not in zs_cache:
                            zs_cache[target] = {"zs_accuracy": self._zero_shot(t_split, f"zero-shot {target}")}
                        row.update(zs_cache[target])
                    result["targets"][target] = row
        if self.dist.is_main:
            atomic_write_json(done, result)
            self.progress.line(f"{tag}: " + _result_line(result))
        barrier(self.dist)
        return result

    def run(self) -> dict[str, Any]:
        c = self.config
        finished = self._prepare_folder()
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
        zs_cache: dict[str, dict] = {}
        for dataset in c.datasets:
            for seed in c.seeds:
                res = self._one(dataset, seed, zs_cache)
                if c.protocol in ("xd", "dg"):
                    per.setdefault(f"{dataset}", {})[seed] = {**res["source"]}
                    for t, row in res["targets"].items():
                        per.setdefault(t, {})[seed] = row
                else:
                    per.setdefault(dataset, {})[seed] = res
        source = c.datasets[0] if c.protocol in ("xd", "dg") and c.datasets else None
        summary = summarize(c.protocol, per, source=source)
        summary["run_dir"] = str(self.dir)
        summary["paper"] = compare_with_paper(c, summary, base=self.base.describe())
        if self.dist.is_main:
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


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(name).name or name)


def _data_api():
    """The data layer, imported lazily so that model-only use does not import it."""
    from types import SimpleNamespace

    import mmlop.data as data
    from mmlop.data import transforms

    return SimpleNamespace(load_dataset=data.load_dataset, ImageDataset=data.ImageDataset,
                           build_train_transform=transforms.build_train_transform,
                           build_test_transform=transforms.build_test_transform)


def run(config: RunConfig, *, resume: bool = False, fixed_name: bool = False) -> dict[str, Any]:
    """Run a configuration and return its summary (also written to the run folder).

    A folder that already holds this run, finished, is not run again: its summary is returned (``resume`` re-reads
    its results and rewrites the reports). See :class:`Runner` for ``fixed_name``.
    """
    return Runner(config, resume=resume, fixed_name=fixed_name).run()
