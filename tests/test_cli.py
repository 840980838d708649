import json

from mmlop.cli import main


def test_info_json_reports_the_parameter_table(capsys):
    assert main(["info", "--model", "ViT-B-16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r["parameters"] for r in report["parameters"]}
    assert rows["this config"] == 11_556 and rows["IVLP full rank"] == 46_080 and rows["CoOp, 16 tokens"] == 8_192
    assert report["architecture"]["vision_width"] == 768


def test_info_overrides_and_text_output(capsys):
    assert main(["info", "--model", "ViT-L-14", "--rank", "2", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert "ViT-L-14: text 12x768, vision 24x1024" in out
    assert f"{3 * (4 * 2 + 2 * 768 + 2 * 1024):,}" in out


def test_info_errors_are_one_clear_line(capsys):
    assert main(["info", "--model", "ViT-Q-99"]) == 2
    assert "unknown model 'ViT-Q-99'" in capsys.readouterr().err
    assert main(["info", "--length", "0"]) == 2
    assert "PromptConfig.length=0" in capsys.readouterr().err


def test_train_choices_refuse_unknown_names_before_anything_loads(capsys):
    import pytest

    for flag, value in (("--preset", "b2m"), ("--method", "mmlopp"), ("--precision", "fp8"),
                        ("--fewshot-source", "mine")):
        with pytest.raises(SystemExit) as e:
            main(["train", flag, value])
        assert e.value.code == 2
        assert f"argument {flag}: invalid choice: '{value}'" in capsys.readouterr().err


def test_the_choice_tables_match_the_presets_and_import_no_torch():
    import subprocess
    import sys

    import pytest

    import mmlop.names as names
    from mmlop.config import ConfigError
    from mmlop.data.fewshot_splits import FEWSHOT_SOURCES
    from mmlop.training import all_presets
    from mmlop.training.presets import method_preset

    assert sorted(names.PRESETS) == sorted(all_presets())
    with pytest.raises(ConfigError) as e:
        method_preset("?")
    assert str(e.value).endswith(f"known: {sorted(names.METHODS)}")
    assert names.FEWSHOT_SOURCES == FEWSHOT_SOURCES
    # The module itself, loaded on its own, pulls in nothing heavy (argparse builds choices from it).
    code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('n', sys.argv[1]); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
            "print(m.PRESETS[0], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, names.__file__], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "world False"


def test_print_config_shows_the_resolved_preset_and_exits(capsys):
    assert main(["train", "--preset", "fewshot", "--method", "coop16", "--shots", "4", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["protocol"] == "fewshot" and cfg["shots"] == 4 and cfg["optim"]["epochs"] == 200
    assert cfg["optim"]["lr"] == 0.002 and cfg["method"]["prompt"]["depth"] == 1
    assert main(["train", "--epochs", "1", "--print-config"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["optim"]["epochs"] == 1 and "warm-up lr" in captured.err


def test_train_help_documents_the_warmup_epoch(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--epochs 1 trains only the warm-up" in out and "--print-config" in out


def test_a_second_plain_train_prints_the_finished_run_and_other_settings_get_a_folder(tmp_path, capsys,
                                                                                      monkeypatch):
    args = ["train", "--datasets", "world/colours", "--seeds", "1", "--epochs", "2", "--max-test-per-class", "4",
            "--set", "optim.max_steps_per_epoch=2", "--output-dir", str(tmp_path)]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "\r" not in first.err  # not a terminal: plain lines
    assert "world/colours seed 1 epoch 2/2" in first.err and "world/colours seed 1: base" in first.err
    run_dir = tmp_path / "world-b2n"
    md = (run_dir / "summary.md").read_text()
    assert "mmlop-world (built-in weights)" in md and "(None)" not in md
    assert (run_dir / "summary.png").is_file() and (run_dir / "colours" / "seed1" / "curves.png").is_file()

    import mmlop.training.runner as runner

    real_load_base = runner.load_base
    monkeypatch.setattr(runner, "load_base", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    assert main(args) == 0  # answered from the run folder: no model is loaded
    monkeypatch.setattr(runner, "load_base", real_load_base)
    again = capsys.readouterr()
    assert "already holds this run, finished" in again.err and "epoch 1/2" not in again.err
    assert first.out == again.out  # the same summary table

    assert main(args[:-2] + ["--epochs", "3", "--output-dir", str(tmp_path)]) == 0
    third = capsys.readouterr()
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("world-b2n"))
    assert len(folders) == 2 and folders[1].startswith("world-b2n-") and "epoch 3/3" in third.err
