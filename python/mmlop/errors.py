"""The package's exceptions, all derived from :class:`MmlopError`.

``except mmlop.MmlopError`` catches every error mmlop raises on purpose: bad configuration, bad data, a store or
checkpoint that does not fit, prompts loaded onto the wrong base, a diverged run. Each also derives from the
built-in type callers caught before this base existed (``ValueError``, ``FileExistsError``, ``RuntimeError``), so
existing ``except`` clauses keep working.

The native extension raises :class:`DatasetError` and :class:`StoreError` from here (the binding looks them up on
first use), so errors from Rust and from Python share one type. This module imports nothing else from mmlop: every
layer, the binding included, can import it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "ExportError",
    "InputError",
    "MmlopError",
    "ModelConfigError",
    "ModelConfigNotFoundError",
    "PredictError",
    "PromptFileError",
    "PromptFileNotFoundError",
    "PromptMismatchError",
    "QuickGeluMismatchError",
    "RunExistsError",
    "RunInterrupted",
    "StoreError",
    "TemplateError",
    "TrainingDivergedError",
    "UnsupportedModelError",
    "WeightsFileError",
]


class MmlopError(Exception):
    """Base of every exception mmlop raises on purpose."""


class ConfigError(MmlopError, ValueError):
    """A configuration field has a wrong type or value; the message names the field and what is allowed."""


class DatasetError(MmlopError, ValueError):
    """A dataset is missing, malformed or inconsistent; the message names the file and what was expected."""


class StoreError(MmlopError):
    """A feature store file is missing, corrupt, truncated, or holds other rows than expected. The message names
    the file."""


class CheckpointError(MmlopError, ValueError):
    """A training checkpoint is corrupt or belongs to other settings."""


class WeightsFileError(MmlopError, ValueError):
    """A base-weights file (an OpenAI TorchScript archive) is not what it claims, names code it may not run, or
    does not fit the architecture."""


class PromptMismatchError(MmlopError, ValueError):
    """Saved prompts do not belong to the base they are being loaded onto."""


class QuickGeluMismatchError(MmlopError, ValueError):
    """The requested activation does not match the one the pretrained weights were trained with."""


class UnsupportedModelError(MmlopError, ValueError):
    """The open_clip model has a tower that deep prompts cannot be inserted into faithfully."""


class ModelConfigError(MmlopError, ValueError):
    """An unknown model name, or a model JSON that is malformed or incomplete."""


class ModelConfigNotFoundError(MmlopError, FileNotFoundError):
    """A model JSON path that does not exist."""


class PromptFileError(MmlopError, ValueError):
    """A saved prompts folder is incomplete, malformed, or its tensors do not match their recorded digest."""


class PromptFileNotFoundError(MmlopError, FileNotFoundError):
    """A prompts folder, or one of its two files, does not exist."""


class TemplateError(MmlopError, KeyError):
    """An unknown template list name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputError(MmlopError, ValueError):
    """A value given to the inference API has the wrong type or content; the message says what was expected."""


class PredictError(MmlopError, ValueError):
    """Bad input to prediction: a missing or unreadable image, a bad class list, or an unusable output path."""


class ExportError(MmlopError, ValueError):
    """An export that cannot be written: unknown format, existing files, or a missing optional dependency."""


class RunExistsError(MmlopError, FileExistsError):
    """The run folder already holds a run with other settings, or an unfinished run and ``resume`` was not asked,
    or it is not a folder mmlop created."""


class RunInterrupted(MmlopError):
    """Training was interrupted (Ctrl-C); every complete epoch is checkpointed in the run folder."""

    exit_code = 130  # the shell's status for SIGINT

    def __init__(self, epoch: int, run_dir: object):
        super().__init__(f"interrupted at epoch {epoch} in {run_dir}; continue with --resume (the {epoch - 1} "
                         "complete epoch(s) are kept)")
        self.epoch, self.run_dir = epoch, run_dir


class TrainingDivergedError(MmlopError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3  # the CLI's status for a run that failed rather than was refused
