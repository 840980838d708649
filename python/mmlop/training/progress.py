"""Progress of a run: one bar over every (dataset, seed, epoch) on a terminal, one line per epoch in a log.

A progress bar redraws itself with carriage returns; written to a file or a CI log, a four-minute run leaves
thousands of them. So the bar is drawn only when the stream is a terminal, and otherwise each finished epoch
(and each evaluation) is one plain line with the same information: dataset, seed, epoch, loss, lr and an ETA.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["RunProgress", "step_bar", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``4000`` -> ``1h06m``; ``9`` -> ``9s``."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class RunProgress:
    """Progress over ``total_epochs`` epochs (datasets x seeds x epochs of a run).

    Args:
        total_epochs: Epochs in the whole run.
        enabled: False prints nothing (``quiet``).
        stream: Where to write (stderr by default).
        terminal: Draw a bar (True) or write lines (False); default: whether ``stream`` is a terminal.
    """

    def __init__(self, total_epochs: int, *, enabled: bool = True, stream: TextIO | None = None,
                 terminal: bool | None = None):
        self.total = max(0, int(total_epochs))
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = _is_terminal(self.stream) if terminal is None else terminal
        self.done = 0  # epochs finished or skipped
        self._worked, self._work_seconds = 0, 0.0  # epochs trained in this process, for the ETA
        self._label, self._epoch_t0 = "", time.perf_counter()
        self._bar = None
        if enabled and self.terminal and self.total:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, unit="epoch", dynamic_ncols=True, file=self.stream,
                             bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total} epochs "
                                        "[{elapsed}<{remaining}{postfix}]")

    @property
    def tty(self) -> bool:
        """Whether a bar is drawn (so that nested evaluation bars may be drawn too)."""
        return self._bar is not None

    def start(self, dataset: str, seed: int) -> None:
        """The (dataset, seed) pair whose epochs follow."""
        self._label = f"{dataset} seed {seed}"
        if self._bar is not None:
            self._bar.set_description_str(self._label)

    def begin_epoch(self) -> None:
        self._epoch_t0 = time.perf_counter()

    def step(self, fraction: float) -> None:
        """Part of the current epoch done (0..1), to move the bar within long epochs."""
        if self._bar is not None:
            self._bar.n = self.done + min(max(fraction, 0.0), 1.0)
            self._bar.refresh()

    def skip(self, epochs: int) -> None:
        """Epochs that need no work (a finished or resumed run); they do not count towards the ETA's rate."""
        self.done += max(0, epochs)
        if self._bar is not None:
            self._bar.n = self.done
            self._bar.refresh()

    def eta_seconds(self) -> float | None:
        """Seconds left at the rate of the epochs trained so far in this process (None before the first)."""
        if self._worked == 0:
            return None
        return self._work_seconds / self._worked * max(0, self.total - self.done)

    def end_epoch(self, epoch: int, epochs: int, metrics: dict[str, Any]) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` finished with ``metrics`` (``loss_total``, ``lr``, ...)."""
        self._work_seconds += time.perf_counter() - self._epoch_t0
        self._worked += 1
        self.done += 1
        if not self.enabled:
            return
        loss, lr = metrics.get("loss_total"), metrics.get("lr")
        if self._bar is not None:
            self._bar.n = self.done
            self._bar.set_postfix_str(f"epoch {epoch}/{epochs}" + (f", loss {loss:.3f}" if loss is not None else ""))
            return
        eta = self.eta_seconds()
        parts = [f"[{self.done}/{self.total}] {self._label} epoch {epoch}/{epochs}"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if lr is not None:
            parts.append(f"lr {lr:.2e}")
        if metrics.get("seconds") is not None:
            parts.append(f"{metrics['seconds']:.1f}s")
        if eta is not None:
            parts.append(f"ETA {format_seconds(eta)}")
        self.line(", ".join(parts))

    def line(self, text: str) -> None:
        """A message that stays (written above the bar on a terminal)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.n = self.done
            self._bar.close()
            self._bar = None


def step_bar(total: int, desc: str, enabled: bool, stream: TextIO | None = None):
    """A transient bar over ``total`` steps (e.g. evaluation batches), drawn only on a terminal; else None."""
    stream = stream if stream is not None else sys.stderr
    if not enabled or total == 0 or not _is_terminal(stream):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=stream)
