"""Classifying a user's image files with saved prompts: file discovery, batched top-k prediction, CSV/JSON output.

The library side of ``mmlop predict``. Predictions come from :class:`mmlop.Classifier` (drift correction over the
class list given); probabilities are the softmax of its scaled logits over that list. (The module is not called
``predict``: a submodule of that name would shadow the function ``mmlop.predict``.)
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from mmlop._io import atomic_write_bytes
from mmlop.errors import PredictError

#: Suffixes picked up when a folder is walked (lower case). A file named explicitly may have any suffix.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
#: The formats :func:`write_predictions` writes, by output suffix.
OUTPUT_SUFFIXES = (".csv", ".json")
FORMAT = "mmlop-predictions/1"


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one image.

    Attributes:
        path: The image file, as found.
        classes: The k most probable class names, most probable first.
        probabilities: Their probabilities (softmax of the scaled logits over the whole class list).
    """

    path: str
    classes: tuple[str, ...]
    probabilities: tuple[float, ...]


def find_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named directly or found in folders.

    Folders are walked recursively; files with a suffix in :data:`IMAGE_SUFFIXES` are taken, hidden files and
    folders skipped, and each folder's images sorted by path. Inputs keep their order; a file met twice is
    listed once.

    Args:
        inputs: Image files and folders.

    Returns:
        The image paths.

    Raises:
        PredictError: an input does not exist, a folder holds no image files, or there are no inputs.
    """
    if not inputs:
        raise PredictError("no images given: expected image files or folders of images")
    found: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not files:
                raise PredictError(f"{p}: folder holds no image files (expected suffixes "
                                   f"{', '.join(IMAGE_SUFFIXES)})")
            found.extend(files)
        elif p.is_file():
            found.append(p)
        else:
            raise PredictError(f"{p}: no such file or folder; expected an image file or a folder of images")
    return list(dict.fromkeys(found))


def check_images(paths: Sequence[Path]) -> None:
    """Check that every file is an image PIL can read (header only, no full decode), before any model work.

    Raises:
        PredictError: naming every unreadable file (up to ten), not only the first.
    """
    from PIL import Image, UnidentifiedImageError

    bad = []
    for p in paths:
        try:
            with Image.open(p) as im:
                im.size  # noqa: B018  (reading the header is the check)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            bad.append(f"{p} ({type(e).__name__}: {e})" if not isinstance(e, UnidentifiedImageError)
                       else f"{p} (not an image)")
    if bad:
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise PredictError(f"{len(bad)} file(s) cannot be read as images: {'; '.join(bad[:10])}{more}")


def check_classnames(names: Sequence[str], *, source: str = "--classes") -> list[str]:
    """Validate a class list: at least one name, no empty name, no duplicates.

    Args:
        names: The class names in label order.
        source: Where the names came from, for the error message.

    Returns:
        The names as a list.

    Raises:
        PredictError: an empty list, an empty name or a repeated name (all repeats are named).
    """
    names = [str(n) for n in names]
    if not names:
        raise PredictError(f"{source}: the class list is empty; expected at least one class name")
    empty = [i for i, n in enumerate(names) if not n.strip()]
    if empty:
        raise PredictError(f"{source}: class name {empty[0] + 1} is empty; expected non-empty names")
    seen: dict[str, int] = {}
    dup = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        if seen[n] == 2:
            dup.append(n)
    if dup:
        raise PredictError(f"{source}: duplicate class names {dup[:10]}; each class must appear once")
    return names


def read_classes_file(path: str | Path) -> list[str]:
    """Class names from a text file, one per line (blank lines skipped, surrounding spaces stripped).

    Raises:
        PredictError: a missing or undecodable file, or a bad class list (see :func:`check_classnames`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is not part of the first name
    except FileNotFoundError:
        raise PredictError(f"{path}: class file not found; expected one class name per line") from None
    except (UnicodeDecodeError, IsADirectoryError) as e:
        raise PredictError(f"{path}: cannot read the class file ({e}); expected UTF-8 text, one name per "
                           "line") from None
    return check_classnames([line.strip() for line in text.splitlines() if line.strip()], source=str(path))


def load_classifier(prompts: str | Path, classnames: Sequence[str], *, device: str = "cpu",
                    model: str | None = None, pretrained: str | None = None, udc: bool = True):
    """Load saved prompts onto the base they name and build a :class:`mmlop.Classifier`.

    Args:
        prompts: A folder written by :func:`mmlop.save_prompts` (a run's ``.../seed1/prompts``).
        classnames: The classes to score.
        device: ``cpu``, ``cuda`` or ``auto``.
        model, pretrained: Override the base recorded with the prompts.
        udc: Drift correction over ``classnames`` (the paper's test-time setting).

    Returns:
        The classifier.

    Raises:
        PredictError: ``prompts`` is not a prompts folder, or a bad class list.
        PromptMismatchError: the base differs from the one the prompts were trained on.
    """
    from mmlop.inference import Classifier
    from mmlop.model.io import CONFIG_FILE, load_prompts_on_saved_base, saved_method
    from mmlop.training.runner import resolve_device

    folder = Path(prompts)
    if not folder.is_dir() or not (folder / CONFIG_FILE).is_file():
        what = "not a folder" if not folder.is_dir() else f"has no {CONFIG_FILE}"
        raise PredictError(f"--prompts {folder}: {what}; expected a folder written by mmlop.save_prompts "
                           "(e.g. runs/<run>/<dataset>/seed1/prompts)")
    classnames = check_classnames(classnames)
    prompted = load_prompts_on_saved_base(folder, model=model, pretrained=pretrained, device=resolve_device(device))
    # The teacher the prompts were trained with: drift correction needs the same frozen g0 (as `mmlop eval`).
    return Classifier(prompted, classnames, udc=udc, teacher=saved_method(folder).teacher)


def _progress(total: int, enabled: bool):
    """A tqdm bar on a terminal; plain ``predict: n/total images`` lines otherwise (logs, CI)."""
    if not enabled:
        return None
    if sys.stderr.isatty():
        from mmlop.training.progress import step_bar  # the one bar helper (torch-free)

        return step_bar(total, "predict", enabled)

    class _Lines:
        """At most about ten lines however many images: one per tenth done, and the last."""

        def __init__(self) -> None:
            self.n = self.shown = 0

        def update(self, k: int) -> None:
            self.n += k
            if self.n >= total or (self.n - self.shown) * 10 >= total:
                self.shown = self.n
                print(f"predict: {self.n}/{total} images", file=sys.stderr, flush=True)

        def close(self) -> None:
            pass

    return _Lines()


def predict_files(classifier, paths: Sequence[str | Path], *, top_k: int = 1, batch_size: int = 32,
                  progress: bool = False) -> Iterator[Prediction]:
    """Classify image files in batches.

    Args:
        classifier: A :class:`mmlop.Classifier`.
        paths: Image files (see :func:`find_images`); checked to be readable before the first batch.
        top_k: Classes reported per image (1 <= k <= number of classes).
        batch_size: Images per forward pass.
        progress: Report progress on stderr.

    Yields:
        One :class:`Prediction` per path, in order.

    Raises:
        PredictError: ``top_k`` or ``batch_size`` out of range, or a file that is not an image.
        DatasetError: an image whose data cannot be decoded (named).
    """
    import torch

    from mmlop.data.image import open_rgb

    n_cls = len(classifier.classnames)
    if not 1 <= top_k <= n_cls:
        raise PredictError(f"--top-k {top_k}: expected 1..{n_cls} (the number of classes)")
    if batch_size < 1:
        raise PredictError(f"--batch-size {batch_size}: expected an integer >= 1")
    paths = [Path(p) for p in paths]
    check_images(paths)
    bar = _progress(len(paths), progress)
    try:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            # Full decode here: a file with a sound header but truncated data fails by name (DatasetError).
            probs = torch.softmax(classifier.logits([open_rgb(str(p)) for p in chunk]), dim=-1)  # (B, C)
            top_p, top_i = probs.topk(top_k, dim=-1)  # (B, k)
            for p, ps, ix in zip(chunk, top_p.tolist(), top_i.tolist()):
                yield Prediction(str(p), tuple(classifier.classnames[i] for i in ix), tuple(ps))
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()


def predictions_csv(predictions: Sequence[Prediction]) -> str:
    """CSV text: ``path, class_1, probability_1, ..., class_k, probability_k`` with a header row."""
    k = max((len(p.classes) for p in predictions), default=1)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path"] + [f"{f}_{i}" for i in range(1, k + 1) for f in ("class", "probability")])
    for p in predictions:
        w.writerow([p.path] + [x for c, q in zip(p.classes, p.probabilities) for x in (c, f"{q:.6f}")])
    return buf.getvalue()


def predictions_json(predictions: Sequence[Prediction], *, classnames: Sequence[str],
                     prompts: str | None = None) -> str:
    """JSON text: the class list, the prompts used and, per image, its top-k classes and probabilities."""
    from mmlop.version import __version__

    obj = {"format": FORMAT, "mmlop_version": __version__, "prompts": prompts, "classes": list(classnames),
           "predictions": [{"path": p.path, "top": [{"class": c, "probability": q}
                                                    for c, q in zip(p.classes, p.probabilities)]}
                           for p in predictions]}
    return json.dumps(obj, indent=2) + "\n"


def check_output(output: str | Path, *, overwrite: bool = False) -> Path:
    """Check an output path before any work: a known suffix, and no existing file unless ``overwrite``.

    Raises:
        PredictError: an unknown suffix, an existing file, or a folder in the way.
    """
    out = Path(output)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise PredictError(f"--output {out}: unknown format {out.suffix or '(no suffix)'!r}; expected a path "
                           f"ending in {' or '.join(OUTPUT_SUFFIXES)}")
    if out.is_dir():
        raise PredictError(f"--output {out}: is a folder; expected a file path ending in .csv or .json")
    if out.exists() and not overwrite:
        raise PredictError(f"--output {out}: file exists; pass --overwrite to replace it (nothing was written)")
    return out


def write_predictions(predictions: Sequence[Prediction], output: str | Path, *, classnames: Sequence[str],
                      prompts: str | None = None, overwrite: bool = False) -> Path:
    """Write predictions atomically as CSV or JSON, chosen by the suffix of ``output``.

    Args:
        predictions: From :func:`predict_files`.
        output: ``*.csv`` or ``*.json``.
        classnames: The class list scored (recorded in JSON).
        prompts: The prompts folder (recorded in JSON).
        overwrite: Replace an existing file.

    Returns:
        The output path.

    Raises:
        PredictError: see :func:`check_output`.
    """
    out = check_output(output, overwrite=overwrite)
    text = (predictions_csv(predictions) if out.suffix.lower() == ".csv"
            else predictions_json(predictions, classnames=classnames, prompts=prompts))
    atomic_write_bytes(out, text.encode())
    return out
