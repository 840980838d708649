"""Bad input through the CLI and the runner (issue 13, classes 2, 4 and 7): one error boundary (one line, exit 2;
interrupts 130; bugs 1 with their traceback), options that never silently lose, run folders and user files that
are never damaged (checksums before and after)."""

import json
import os
import warnings

import numpy as np
import open_clip
import pytest
from checksums import tree_sha256
from PIL import Image

from mmlop import cli
from mmlop.cli import main
from mmlop.config import ConfigError
from mmlop.errors import MmlopError
from mmlop.model import base_from_model
from mmlop.model.factory import register_base
from mmlop.training import build_config
from mmlop.training import runner
from mmlop.training.runner import RUN_MARKER, Runner, RunExistsError, RunInterrupted, dataset_folder
from tiny_models import make_tiny_clip

MODEL = "tiny-bad-input"


def _tiny():
    return make_tiny_clip(), open_clip.get_tokenizer("ViT-B-16"), {
        "image_size": 32, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "pretrained": None}


register_base(MODEL, _tiny)


def _colours(root, per_class=(3, 2)):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for c, rgb in (("red", (220, 30, 30)), ("green", (30, 200, 30)), ("blue", (30, 30, 220)), ("grey", (90,) * 3)):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = np.clip(np.array(rgb) + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    return _colours(tmp_path_factory.mktemp("colours"))


def _train_args(dataset, out, *extra):
    return ["train", "--preset", "b2n", "--datasets", str(dataset), "--output-dir", str(out), "--model", MODEL,
            "--pretrained", "none", "--seeds", "1", "--epochs", "1", "--shots", "2", "--depth", "2", "--quiet",
            "--no-zero-shot", "--set", "test_batch_size=8", *extra]


def _one_error_line(capsys, code, fragment, prefix="mmlop train: error: "):
    err = capsys.readouterr().err
    assert err.startswith(prefix) and err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err
    return code


CLI_CASES = {
    "--set a wrong type": (["--set", "optim.lr=abc"], "override optim.lr: OptimConfig.lr='abc' is invalid"),
    "--set a false boolean string": (["--set", "method.loss.udc=perhaps"], "LossConfig.udc='perhaps'"),
    "--set without =": (["--set", "optim.lr"], "--set 'optim.lr': expected KEY=VALUE"),
    "--set an unknown key": (["--set", "optim.speed=2"], "unknown option 'speed'"),
    "--name escaping --output-dir": (["--name", "../escaped"], "RunConfig.name='../escaped' is invalid"),
    "--name absolute": (["--name", "/tmp/x"], "RunConfig.name='/tmp/x' is invalid"),
    "--set precision unknown": (["--set", "precision=fp4"], "RunConfig.precision='fp4'"),
    "--set fewshot_source unknown": (["--set", "fewshot_source=magic"], "RunConfig.fewshot_source='magic'"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_refuses_bad_options_in_one_line_with_exit_2_and_writes_nothing(colours, tmp_path, capsys, case):
    extra, fragment = CLI_CASES[case]
    before = tree_sha256(colours, tmp_path)
    assert _one_error_line(capsys, main(_train_args(colours, tmp_path / "runs", *extra)), fragment) == 2
    assert tree_sha256(colours, tmp_path) == before


def test_cli_refuses_a_missing_dataset_before_anything_is_written(tmp_path, capsys):
    code = main(_train_args(tmp_path / "no-such-data", tmp_path / "runs"))
    assert _one_error_line(capsys, code, "no-such-data: unknown dataset") == 2
    assert not (tmp_path / "runs").exists()


def test_a_bad_target_fails_before_training_not_after(colours, tmp_path, capsys):
    args = _train_args(colours, tmp_path / "runs", "--targets", str(tmp_path / "missing-target"))
    args[args.index("b2n")] = "xd"
    assert _one_error_line(capsys, main(args), "missing-target: unknown dataset") == 2
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


CONFIG_FILES = {
    "missing": (None, "nope.json: file not found; expected a RunConfig JSON file"),
    "a JSON list": ("[1, 2]", "holds a JSON list; expected a RunConfig JSON object"),
    "not JSON": ("{oops", "not valid JSON"),
    "a wrong type inside": ('{"optim": {"epochs": "many"}}', "OptimConfig.epochs='many' is invalid"),
}


@pytest.mark.parametrize("case", list(CONFIG_FILES))
def test_cli_refuses_a_bad_config_file(tmp_path, capsys, case):
    text, fragment = CONFIG_FILES[case]
    path = tmp_path / ("nope.json" if text is None else "run.json")
    if text is not None:
        path.write_text(text)
    assert _one_error_line(capsys, main(["train", "--config", str(path)]), fragment) == 2


@pytest.mark.parametrize("flag", [["--method", "coop"], ["--preset", "b2n"], ["--ablation"]])
def test_config_with_method_or_preset_is_refused_not_silently_ignored(tmp_path, capsys, flag):
    path = tmp_path / "run.json"
    path.write_text("{}")
    code = main(["train", "--config", str(path), *flag])
    assert _one_error_line(capsys, code, f"cannot be combined with {flag[0]}") == 2


EVAL_CASES = {
    "missing prompts folder": (lambda t: t / "gone", "gone: not found; expected a folder written by mmlop.save_prompts"),
    "prompts path is a file": (lambda t: (t / "f.txt").write_text("x") and t / "f.txt", "f.txt: a file; expected a folder"),
    "prompts config not JSON": (lambda t: ((t / "p").mkdir(), (t / "p" / "mmlop_config.json").write_text("{"),
                                           t / "p")[2], "mmlop_config.json: not valid JSON"),
}


@pytest.mark.parametrize("case", list(EVAL_CASES))
def test_eval_refuses_bad_prompts_in_one_line(tmp_path, capsys, case):
    make, fragment = EVAL_CASES[case]
    code = main(["eval", "--prompts", str(make(tmp_path)), "--datasets", "x"])
    assert _one_error_line(capsys, code, fragment, prefix="mmlop eval: error: ") == 2


def _raising(exc):
    def cmd(args):
        raise exc
    return cmd


BOUNDARY = {
    "permission denied": (PermissionError(13, "Permission denied", "/shared/runs/x"), 2,
                          "mmlop info: error: Permission denied: /shared/runs/x"),
    "not a directory": (NotADirectoryError(20, "Not a directory", "/data/file.txt/x"), 2,
                        "error: Not a directory: /data/file.txt/x"),
    "a file where a folder belongs": (IsADirectoryError(21, "Is a directory", "/runs/out"), 2,
                                      "error: Is a directory: /runs/out"),
    "disk full": (OSError(28, "No space left on device", "/runs/x/checkpoint.safetensors"), 2,
                  "error: No space left on device: /runs/x/checkpoint.safetensors"),
    "an mmlop error": (ConfigError("RunConfig.shots='x' is invalid: expected an integer"), 2,
                       "error: RunConfig.shots='x' is invalid"),
    "a native dataset error": (None, 2, "error: /nowhere.json: file not found"),
    "a native store error": (None, 2, "bad.store"),
    "an interrupt during training": (RunInterrupted(3, "runs/x/seed1"), 130,
                                     "mmlop info: interrupted: interrupted at epoch 3 in runs/x/seed1; continue with --resume"),
    "an interrupt elsewhere": (KeyboardInterrupt(), 130, "mmlop info: interrupted"),
}


@pytest.mark.parametrize("case", list(BOUNDARY))
def test_the_error_boundary_prints_one_line_and_the_right_status(monkeypatch, capsys, case):
    from mmlop import _native

    exc, status, fragment = BOUNDARY[case]
    if case == "a native dataset error":
        def native(args):
            _native.read_split_json("/nowhere.json")
        func = native
    elif case == "a native store error":
        def store(args):
            path = os.path.join(os.environ["MMLOP_HOME"], "bad.store")
            with open(path, "wb") as f:
                f.write(b"not a store")
            _native.Store(path, verify=True, dtype="float32", width=4, fingerprint="f")
        func = store
    else:
        func = _raising(exc)
    monkeypatch.setattr(cli, "cmd_info", func)
    assert main(["info"]) == status
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_an_unexpected_exception_prints_its_traceback_and_says_it_is_a_bug(monkeypatch, capsys):
    monkeypatch.setattr(cli, "cmd_info", _raising(AttributeError("'NoneType' object has no attribute 'shape'")))
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "AttributeError" in err and "this is a bug in mmlop" in err


def test_a_diverged_run_exits_3(monkeypatch, capsys):
    from mmlop.training.loop import TrainingDivergedError

    monkeypatch.setattr(cli, "cmd_info", _raising(TrainingDivergedError("non-finite loss at epoch 2")))
    assert main(["info"]) == 3
    assert "mmlop info: failed: non-finite loss at epoch 2" in capsys.readouterr().err


# Run folders (class 4) and options that silently lost (class 2), through the runner with the tiny base -------

@pytest.fixture
def base():
    return base_from_model(make_tiny_clip(), open_clip.get_tokenizer("ViT-B-16"), MODEL)


def _cfg(datasets, out, **kw):
    fields = dict(datasets=[str(d) for d in datasets], output_dir=str(out), seeds=[1], shots=2, quiet=True,
                  model=MODEL, pretrained=None, test_batch_size=8, zero_shot=False, name="run")
    fields.update(kw)
    return build_config("b2n", overrides={**fields, "optim.epochs": 1, "method.prompt.depth": 2})


def test_a_name_pointing_at_a_user_folder_is_refused_and_nothing_is_written(colours, tmp_path, base):
    mine = tmp_path / "run"
    mine.mkdir()
    (mine / "summary.md").write_text("my notes, not an mmlop run")
    before = tree_sha256(tmp_path)
    with pytest.raises(RunExistsError, match=f"is not an mmlop run folder \\(no {RUN_MARKER} file\\)"):
        Runner(_cfg([colours], tmp_path), base=base).run()
    assert tree_sha256(tmp_path) == before


def test_a_name_pointing_at_a_file_is_refused(colours, tmp_path, base):
    (tmp_path / "run").write_text("a file")
    before = tree_sha256(tmp_path)
    with pytest.raises(RunExistsError, match="is a file, not a run folder"):
        Runner(_cfg([colours], tmp_path), base=base).run()
    assert tree_sha256(tmp_path) == before


def test_datasets_with_the_same_folder_name_get_their_own_sub_folders(tmp_path, base):
    a, b = _colours(tmp_path / "a" / "pets"), _colours(tmp_path / "b" / "pets")
    assert dataset_folder(str(a)) != dataset_folder(str(b))
    assert dataset_folder("dtd") == "dtd"  # built-in names stay readable
    Runner(_cfg([a, b], tmp_path / "runs"), base=base).run()
    subs = sorted(p.name for p in (tmp_path / "runs" / "run").iterdir() if p.is_dir())
    assert len(subs) == 2 and all(s.startswith("pets-") for s in subs)


def test_a_run_that_failed_before_training_can_simply_be_run_again(colours, tmp_path, base, monkeypatch):
    cfg = _cfg([colours], tmp_path)
    runner = Runner(cfg, base=base)
    monkeypatch.setattr(Runner, "_train", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        runner.run()
    monkeypatch.undo()
    summary = Runner(cfg, base=base).run()  # no --resume needed: nothing had started
    assert summary["datasets"][str(colours)]["seeds"] == [1]
    before = tree_sha256(tmp_path)
    assert Runner(cfg, base=base).run() == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert tree_sha256(tmp_path) == before  # a finished run is shown, not run again


def test_an_unfinished_run_needs_resume(colours, tmp_path, base):
    cfg = _cfg([colours], tmp_path)
    Runner(cfg, base=base).folder.prepare(write=True)
    seed = tmp_path / "run" / dataset_folder(str(colours)) / "seed1"
    seed.mkdir(parents=True)
    (seed / "checkpoint.safetensors").write_bytes(b"")  # training had begun
    before = tree_sha256(tmp_path)
    with pytest.raises(RunExistsError, match="holds this run unfinished; pass --resume"):
        Runner(cfg, base=base).run()
    assert tree_sha256(tmp_path) == before


def test_a_refused_resume_names_the_settings_that_differ(colours, tmp_path, base):
    Runner(_cfg([colours], tmp_path), base=base).folder.prepare(write=True)
    before = tree_sha256(tmp_path)
    with pytest.raises(RunExistsError, match=r"optim.lr: 0.0025 in the run, 0.01 now.*shots: 2 in the run, 3 now"):
        Runner(_cfg([colours], tmp_path, shots=3, **{"optim.lr": 0.01}), base=base, resume=True,
               fixed_name=True).run()
    assert tree_sha256(tmp_path) == before


def test_resume_with_nothing_to_resume_says_so(colours, tmp_path, base):
    with pytest.warns(UserWarning, match="--resume: .* holds no run to resume; starting a new run"):
        Runner(_cfg([colours], tmp_path), base=base, resume=True).folder.prepare(write=True)


def test_more_shots_than_images_records_and_prints_the_shots_used(colours, tmp_path, base):
    summary = Runner(_cfg([colours], tmp_path, shots=100000), base=base).run()
    assert summary["shots"] == {"requested": 100000, "used": {str(colours): {
        "images": 6, "min_per_class": 3, "max_per_class": 3}}}  # the base half: 2 classes x 3 images
    assert any("--shots 100000" in w and "used 3 images per class" in w for w in summary["warnings"])
    text = (tmp_path / "run" / "summary.md").read_text()
    assert "Training images per class (requested 100000)" in text and "> warning: --shots 100000" in text
    seed = json.loads((tmp_path / "run" / dataset_folder(str(colours)) / "seed1" / "results.json").read_text())
    assert seed["train_used"]["min_per_class"] == 3


def test_an_interrupt_names_the_epoch_and_how_to_continue(colours, tmp_path, base, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "fit", interrupted)  # the runner's training call
    with pytest.raises(RunInterrupted, match=r"interrupted at epoch 1 in .*seed1; continue with --resume") as e:
        Runner(_cfg([colours], tmp_path), base=base).run()
    assert isinstance(e.value, MmlopError) and e.value.exit_code == 130
