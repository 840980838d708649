"""The training loop of one (dataset, seed) run (method.md §7)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from mmlop.config import ConfigError, LossConfig
from mmlop.errors import TrainingDivergedError
from mmlop.losses import LossTerms, mmlop_loss
from mmlop.model.prompted import MMLoP
from mmlop.ops.drift_logits import drift_corrected_logits
from mmlop.training.batches import EpochBatchSampler, SeededViews
from mmlop.training.checkpoint import load_checkpoint, save_checkpoint
from mmlop.training.config import OptimConfig
from mmlop.training.distributed import DistInfo
from mmlop.training.progress import RunProgress
from mmlop.training.schedule import epoch_lr


#: Frozen image features (B, D), unit norm, of a batch: (images, keys) -> features, where keys is a (B, 3) tensor of
#: (epoch, index, view) identifying each augmented view (view -1 without pre-enumerated views). Default: a frozen
#: pass over the same images.
FrozenImageFn = Callable[[Tensor, Tensor], Tensor]


class TrainStep(nn.Module):
    """One forward pass of the MMLoP objective, as a module so DistributedDataParallel can wrap it."""

    def __init__(self, model: MMLoP, class_tokens: Tensor, frozen_text: Tensor, loss: LossConfig,
                 text_chunk: int = 0):
        super().__init__()
        self.model = model
        self.register_buffer("class_tokens", class_tokens, persistent=False)
        self.register_buffer("frozen_text", frozen_text, persistent=False)
        self.loss, self.text_chunk = loss, text_chunk

    def forward(self, images: Tensor, labels: Tensor, frozen_image: Tensor) -> LossTerms:
        m = self.model
        # Under autocast only the encoders run in low precision: prompt factors and losses stay float32.
        with torch.autocast(images.device.type, enabled=False):
            p_text, p_vision = m.prompt_tensors()
        if p_text is not None:
            text = m.class_text_features(tokens=self.class_tokens, text_prompts=p_text,
                                         chunk_size=self.text_chunk)  # (C, D)
        else:
            text = self.frozen_text
        image = m.encode_image(images, vision_prompts=p_vision)  # (B, D)
        s = m.logit_scale
        with torch.autocast(images.device.type, enabled=False):
            out = drift_corrected_logits(image.float(), text.float(), self.frozen_text, s, correct=self.loss.udc)
            return mmlop_loss(out, labels, frozen_image, self.frozen_text, s, self.loss)


def autocast_context(device: torch.device, precision: str):
    """The autocast context of a precision: bf16 on CUDA or the CPU, fp16 on CUDA, nothing for fp32.

    bf16 on the CPU pays where the CPU has bf16 arithmetic (``avx512_bf16`` or AMX); elsewhere oneDNN emulates
    it and the step may be slower than float32 (see :func:`cpu_has_bf16`).

    Args:
        device: Where the step runs.
        precision: ``fp32``, ``amp_bf16`` or ``amp_fp16``.

    Returns:
        A context manager.

    Raises:
        ConfigError: for ``amp_fp16`` off CUDA, an amp precision on another device type, or an unknown precision.
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in ("amp_bf16", "amp_fp16"):
        raise ConfigError(f"precision {precision!r}: expected fp32, amp_bf16 or amp_fp16")
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "amp_bf16" else torch.float16)
    if precision == "amp_fp16":
        raise ConfigError(f"precision 'amp_fp16' needs CUDA (device is {device}); on the CPU use amp_bf16 or fp32")
    if device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise ConfigError(f"precision {precision!r} is supported on cuda and cpu devices, not {device.type}")


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (``avx512_bf16`` or AMX flags in ``/proc/cpuinfo``)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass(frozen=True)
class FitData:
    """What one run trains on.

    Attributes:
        dataset: Training images: ``dataset[i] -> (image tensor, label)`` with random augmentation; wrapped so that
            the augmentation of sample i in epoch e is seeded by (seed, e, i).
        classnames: The training class set, label order.
        frozen_text: (C, D) frozen template-ensemble features g0 of ``classnames``.
        frozen_image_fn: Source of frozen image features for a batch (e.g. the feature store); default: a frozen
            forward pass of the same augmented images.
        view_keys: Pre-enumerated views: ``view_keys[i]`` are the store keys of image i's views (see
            :mod:`mmlop.training.frozen`); each epoch shows one of them, drawn from (seed, epoch, i).
    """

    dataset: Dataset
    classnames: Sequence[str]
    frozen_text: Tensor
    frozen_image_fn: FrozenImageFn | None = None
    view_keys: list[list[bytes]] | None = None


@dataclass(frozen=True)
class FitConfig:
    """How one run trains.

    Attributes:
        optim: Optimiser and schedule.
        loss: The objective.
        seed: Run seed (shuffling and augmentation).
        precision: ``fp32``, ``amp_bf16`` or ``amp_fp16`` (see :func:`autocast_context`).
        text_chunk: Classes per text-encoder pass (0 = all).
        num_workers: DataLoader workers.
        progress: A run's :class:`~mmlop.training.progress.RunProgress` to report each step and epoch to, or a
            bool: True shows this fit's own progress (a bar on a terminal, one line per epoch otherwise).
    """

    optim: OptimConfig
    loss: LossConfig
    seed: int
    precision: str = "fp32"
    text_chunk: int = 0
    num_workers: int = 0
    progress: bool | RunProgress = True


@dataclass(frozen=True)
class FitCheckpoint:
    """Where a run keeps its state, and whether it continues from it.

    Attributes:
        run_dir: Where ``checkpoint.safetensors`` and ``metrics.jsonl`` are written (main process only).
        digest: Settings digest stored in checkpoints; resuming with other settings is refused.
        resume: Continue from ``run_dir``'s checkpoint if there is one.
    """

    run_dir: Path
    digest: str
    resume: bool = False


def fit(model: MMLoP, data: FitData, config: FitConfig, checkpoint: FitCheckpoint, *,
        device: torch.device = torch.device("cpu"), dist_info: DistInfo = DistInfo()) -> None:
    """Train the prompts of ``model`` on a few-shot set; the model is left in eval mode.

    Args:
        model: The prompted model (on ``device``).
        data: Training images, class set and frozen features.
        config: Optimiser, objective, seed, precision and loader settings.
        checkpoint: Run folder, settings digest and resumption.
        device: Where the model runs.
        dist_info: Data-parallel rank and world size.

    Raises:
        ValueError: a training label outside the class set.
        CheckpointError: resuming from a checkpoint of other settings.
        TrainingDivergedError: on a non-finite loss.
    """
    optim, loss, seed, precision = config.optim, config.loss, config.seed, config.precision
    classnames, frozen_text, frozen_image_fn = data.classnames, data.frozen_text, data.frozen_image_fn
    run_dir = Path(checkpoint.run_dir)
    autocast_context(device, precision)  # refuse a precision the device cannot run before any work
    model.train()
    params = list(model.trainable_parameters())
    opt = torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
    start = 0
    if checkpoint.resume:
        ckpt = load_checkpoint(run_dir, model, opt, checkpoint.digest)
        if ckpt is not None:
            start = ckpt.epoch + 1
    tokens = model.class_tokens(classnames) if model.config.text_depth > 0 else torch.zeros(0, 1, dtype=torch.long)
    step = TrainStep(model, tokens.to(device), frozen_text.to(device), loss, config.text_chunk).to(device)
    runner: nn.Module = step
    if dist_info.enabled:
        runner = nn.parallel.DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda"
                                                     else None, broadcast_buffers=False)
    scaler = torch.amp.GradScaler("cuda", enabled=(device.type == "cuda" and precision == "amp_fp16"))
    views = SeededViews(data.dataset, seed, data.view_keys)
    metrics_path = run_dir / "metrics.jsonl"
    own_reporter = not isinstance(config.progress, RunProgress)
    reporter = (RunProgress(optim.epochs, enabled=bool(config.progress) and dist_info.is_main) if own_reporter
                else config.progress)
    reporter.skip(start)  # epochs a resumed run does not repeat

    def frozen_image(images: Tensor, keys) -> Tensor:
        if frozen_image_fn is not None:
            return frozen_image_fn(images, keys).to(device)
        with torch.no_grad(), autocast_context(device, precision):
            return model.encode_image(images, prompted=False, normalize=True).float()

    for epoch in range(start, optim.epochs):
        lr = epoch_lr(optim, epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        sampler = EpochBatchSampler(len(views), optim.batch_size, seed, epoch, rank=dist_info.rank,
                                    world_size=dist_info.world_size, max_steps=optim.max_steps_per_epoch)
        loader = DataLoader(views, batch_sampler=sampler, num_workers=config.num_workers,
                            pin_memory=device.type == "cuda")
        sums: dict[str, float] = {}
        n_steps, n_images, t0 = 0, 0, time.perf_counter()
        reporter.begin_epoch()
        for images, y, batch_keys in loader:
            _check_labels(y, len(classnames))
            images, y = images.to(device, non_blocking=True), y.to(device, non_blocking=True)
            f0 = frozen_image(images, batch_keys)
            with autocast_context(device, precision):
                terms = runner(images, y, f0)
            if not torch.isfinite(terms.total):
                raise TrainingDivergedError(
                    f"non-finite loss ({float(terms.total.detach())}) at epoch {epoch + 1}, step {n_steps + 1} "
                    f"(terms {terms.as_floats()}); the last good checkpoint is kept in {run_dir}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(terms.total).backward()
            scaler.step(opt)
            scaler.update()
            for k, v in terms.as_floats().items():
                sums[k] = sums.get(k, 0.0) + v
            n_steps += 1
            n_images += images.shape[0] * dist_info.world_size
            reporter.step(n_steps / max(1, len(sampler)))
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "lr": lr, "steps": n_steps, "seconds": round(seconds, 3),
               "images_per_s": round(n_images / seconds, 2) if seconds > 0 else None,
               **{f"loss_{k}": v / max(1, n_steps) for k, v in sums.items()}}
        if dist_info.is_main:
            save_checkpoint(run_dir, model, opt, epoch, checkpoint.digest)
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
        reporter.end_epoch(epoch + 1, optim.epochs, row)
    if own_reporter:
        reporter.close()
    model.eval()


def _check_labels(y: Tensor, num_classes: int) -> None:
    # On the CPU batch, before it moves: a wrong label would otherwise surface as a device-side assert.
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"training labels span [{int(y.min())}, {int(y.max())}] but there are {num_classes} "
                         "classes: expected labels 0..C-1")

