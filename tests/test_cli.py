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
