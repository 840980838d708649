"""Run progress: plain lines (no carriage returns) when the stream is not a terminal, an ETA, dataset and seed."""

import io

from mmlop.training.progress import RunProgress, format_seconds, step_bar


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_one_plain_line_per_epoch_naming_dataset_and_seed():
    out = io.StringIO()
    p = RunProgress(4, stream=out)
    assert not p.tty
    p.start("world/shapes", 2)
    for epoch in (1, 2):
        p.begin_epoch()
        p.step(0.5)
        p.end_epoch(epoch, 2, {"loss_total": 1.5, "lr": 0.01, "seconds": 0.1})
    p.line("world/shapes seed 2: base 80.00")
    p.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 3
    assert lines[0].startswith("[1/4] world/shapes seed 2 epoch 1/2, loss 1.5000, lr 1.00e-02, 0.1s, ETA ")
    assert lines[1].startswith("[2/4] world/shapes seed 2 epoch 2/2")


def test_the_eta_counts_only_trained_epochs():
    p = RunProgress(10, stream=io.StringIO())
    p.skip(4)  # resumed: no work, no rate
    assert p.eta_seconds() is None
    p._worked, p._work_seconds, p.done = 2, 6.0, 6
    assert p.eta_seconds() == 12.0  # 3 s an epoch, 4 left
    assert format_seconds(75) == "1m15s" and format_seconds(4000) == "1h06m" and format_seconds(9) == "9s"


def test_a_terminal_gets_one_bar_that_reaches_the_total():
    out = _Tty()
    p = RunProgress(2, stream=out)
    assert p.tty
    p.start("world/colours", 1)
    p.begin_epoch()
    p.end_epoch(1, 2, {"loss_total": 1.0})
    p.skip(1)
    p._bar.refresh()
    text = out.getvalue()
    p.close()
    assert "world/colours seed 1" in text and "2.0/2 epochs" in text and "100%" in text


def test_quiet_prints_nothing_and_bars_need_a_terminal():
    out = io.StringIO()
    p = RunProgress(3, enabled=False, stream=out)
    p.end_epoch(1, 3, {"loss_total": 1.0})
    p.line("x")
    assert out.getvalue() == ""
    assert step_bar(5, "eval", True, stream=io.StringIO()) is None
    bar = step_bar(5, "eval", True, stream=_Tty())
    assert bar is not None
    bar.close()
