"""Top-1 accuracy of a prompted (or zero-shot) model on a test split: the one evaluation path, used by training-time
evaluation (:mod:`mmlop.training.runner`) and by ``mmlop eval`` alike, so the same prompts on the same data always
score the same.

The rules live here once: the test transform (:func:`mmlop.data.transforms.build_test_transform` with the base's
size and normalisation), the single-template fallback of a model without text prompts (:func:`zero_shot_template`),
the teacher templates and drift correction of the classifier, and the autocast of the evaluation loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from mmlop.config import ConfigError, TeacherConfig
from mmlop.data.errors import DatasetError
from mmlop.data.image import ImageDataset
from mmlop.data.splits import DatasetSplits
from mmlop.data.transforms import build_test_transform
from mmlop.inference import Classifier
from mmlop.model.prompted import MMLoP
from mmlop.names import PRECISIONS
from mmlop.training.config import RunConfig
from mmlop.training.loop import autocast_context
from mmlop.training.progress import step_bar

#: The zero-shot CLIP baseline's template for a dataset that has no hand-written one.
DEFAULT_ZERO_SHOT_TEMPLATE = "a photo of a {}."


@dataclass(frozen=True)
class EvalConfig:
    """How a model is scored: the same for training-time evaluation and ``mmlop eval``.

    Attributes:
        udc: Drift correction over the evaluated class set (the paper applies it at test time).
        teacher: Templates and averaging of the frozen features g0 that drift correction needs.
        precision: ``fp32``, ``amp_bf16`` or ``amp_fp16``; autocast as in the training loop.
        batch_size: Test images per forward pass.
        num_workers: DataLoader workers.
        max_per_class: Evaluate on at most this many images per class (0 = all).
        progress: Show a progress bar.
    """

    udc: bool = True
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    precision: str = "fp32"
    batch_size: int = 100
    num_workers: int = 0
    max_per_class: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"EvalConfig.precision={self.precision!r} is invalid: expected one of {PRECISIONS}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"EvalConfig.batch_size={self.batch_size!r} is invalid: expected an integer >= 1")

    @classmethod
    def of_run(cls, run: RunConfig) -> "EvalConfig":
        """The evaluation settings of a :class:`~mmlop.training.config.RunConfig`."""
        return cls(udc=run.method.loss.udc_at_test, teacher=run.method.teacher, precision=run.precision,
                   batch_size=run.test_batch_size, num_workers=run.num_workers,
                   max_per_class=run.max_test_per_class, progress=not run.quiet)


def zero_shot_template(model: MMLoP, splits: DatasetSplits) -> str | None:
    """The single template a model without text prompts is scored with: the dataset's hand-written template, else
    :data:`DEFAULT_ZERO_SHOT_TEMPLATE`; None (the teacher ensemble is not used) for a model with text prompts."""
    if model.config.text_depth > 0:
        return None
    return splits.template or DEFAULT_ZERO_SHOT_TEMPLATE


def limit_per_class(labels: Sequence[int], max_per_class: int) -> list[int]:
    """Indices of the first ``max_per_class`` items of each label, in order (all items when 0)."""
    if max_per_class <= 0:
        return list(range(len(labels)))
    seen: dict[int, int] = {}
    keep = []
    for i, y in enumerate(labels):
        if seen.get(int(y), 0) < max_per_class:
            seen[int(y)] = seen.get(int(y), 0) + 1
            keep.append(i)
    return keep


def evaluate_split(model: MMLoP, splits: DatasetSplits, config: EvalConfig,
                   device: torch.device = torch.device("cpu"), *, desc: str = "eval") -> dict:
    """Accuracy of ``model`` on the test split of ``splits``, among ``splits.classnames``.

    Args:
        model: The model, on ``device``; its base gives the test transform.
        splits: The dataset (its test split and class set; the template for a model without text prompts).
        config: The evaluation settings.
        device: Where the model runs.
        desc: The progress bar's label, e.g. ``"eval world/colours seed 1 base"``.

    Returns:
        ``{"accuracy": float (percent), "correct": int, "total": int}``.

    Raises:
        ValueError: the test split is empty.
    """
    base = model.base_info
    dataset = ImageDataset(splits.test, build_test_transform(base.image_size, base.mean, base.std))
    labels = [int(y) for y in splits.test.labels]
    return accuracy(model, dataset, labels, splits.classnames, config, device=device,
                    zero_shot_template=zero_shot_template(model, splits), desc=desc)


@torch.no_grad()
def accuracy(model: MMLoP, dataset: Dataset, labels: Sequence[int], classnames: Sequence[str],
             config: EvalConfig = EvalConfig(), *, device: torch.device = torch.device("cpu"),
             zero_shot_template: str | None = None, desc: str = "eval") -> dict:
    """Micro top-1 accuracy (percent) over ``dataset`` with a classifier over ``classnames``.

    Prefer :func:`evaluate_split`, which also picks the test transform and the template; this is the loop itself.

    Args:
        model: The model; a depth-0 text side uses ``zero_shot_template`` (or the teacher ensemble).
        dataset: ``dataset[i] -> (image, label)`` with the test transform.
        labels: The labels of ``dataset`` (for ``config.max_per_class``).
        classnames: The evaluated class set; drift correction averages over exactly these classes.
        config: The evaluation settings.
        device: Where the model runs.
        zero_shot_template: See :class:`~mmlop.inference.Classifier`.
        desc: The progress bar's label (a bar on a terminal only; a log gets no carriage returns).

    Returns:
        ``{"accuracy": float, "correct": int, "total": int}``.

    Raises:
        ValueError: the evaluation set is empty.
    """
    model.eval()
    clf = Classifier(model, classnames, udc=config.udc, teacher=config.teacher, zero_shot_template=zero_shot_template)
    keep = limit_per_class(labels, config.max_per_class)
    subset = dataset if len(keep) == len(labels) else Subset(dataset, keep)
    loader = DataLoader(subset, batch_size=config.batch_size, num_workers=config.num_workers, shuffle=False)
    correct = total = 0
    bar = step_bar(len(loader), desc, config.progress)
    for images, y in loader:
        with autocast_context(device, config.precision):
            pred = clf.logits(images.to(device)).argmax(dim=-1).cpu()
        correct += int((pred == y).sum())
        total += int(y.numel())
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.refresh()  # draw the final 100 % state; tqdm skips redraws closer than its mininterval
        bar.close()
    if total == 0:
        raise DatasetError("evaluation set is empty: the test split holds no image of the evaluated classes; expected at least one test image")
    return {"accuracy": 100.0 * correct / total, "correct": correct, "total": total}
