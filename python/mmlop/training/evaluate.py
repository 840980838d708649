"""Top-1 accuracy of a prompted (or zero-shot) model on a labelled image set."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from mmlop.config import TeacherConfig
from mmlop.data.errors import DatasetError
from mmlop.inference import Classifier
from mmlop.model.prompted import MMLoP
from mmlop.training.progress import step_bar


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


@torch.no_grad()
def accuracy(model: MMLoP, dataset: Dataset, labels: Sequence[int], classnames: Sequence[str], *, udc: bool = True,
             teacher: TeacherConfig | None = None, zero_shot_template: str | None = None, batch_size: int = 100,
             num_workers: int = 0, device: torch.device = torch.device("cpu"), max_per_class: int = 0,
             autocast: Callable | None = None, progress: bool = False, desc: str = "eval") -> dict:
    """Micro top-1 accuracy (percent) over ``dataset`` with a classifier over ``classnames``.

    Args:
        model: The model; a depth-0 text side uses ``zero_shot_template`` (or the teacher ensemble).
        dataset: ``dataset[i] -> (image, label)`` with the test transform.
        labels: The labels of ``dataset`` (for ``max_per_class``).
        classnames: The evaluated class set; drift correction (``udc``) averages over exactly these classes.
        max_per_class: Evaluate on at most this many images per class (0 = all).
        progress: Show a bar over the batches (on a terminal only; a log gets no carriage returns).
        desc: The bar's label, e.g. ``"eval world/colours seed 1 base"``.

    Returns:
        ``{"accuracy": float, "correct": int, "total": int}``.
    """
    model.eval()
    clf = Classifier(model, classnames, udc=udc, teacher=teacher, zero_shot_template=zero_shot_template)
    keep = limit_per_class(labels, max_per_class)
    subset = dataset if len(keep) == len(labels) else Subset(dataset, keep)
    loader = DataLoader(subset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    correct = total = 0
    bar = step_bar(len(loader), desc, progress)
    for images, y in loader:
        ctx = autocast() if autocast else torch.no_grad()
        with ctx:
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
