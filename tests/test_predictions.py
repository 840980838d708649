"""``mmlop.predictions`` and ``mmlop predict``: file discovery, class lists, batched top-k, CSV/JSON output."""

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import mmlop
from mmlop.cli import main
from mmlop.config import PromptConfig
from mmlop.inference import Classifier
from mmlop.model import MMLoP
from mmlop.predictions import (PredictError, check_classnames, find_images, predict_files, read_classes_file,
                               write_predictions)

NAMES = ["cat", "dog", "bird", "fish"]


def _image(path, seed, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_find_images_walks_folders_sorted_and_keeps_named_files(tmp_path):
    for rel in ("b/2.png", "a/1.JPG", "a/sub/0.jpeg", ".hidden/3.png", "a/.4.png"):
        _image(tmp_path / "imgs" / rel, 0)
    (tmp_path / "imgs" / "a" / "notes.txt").write_text("not an image")
    named = _image(tmp_path / "one.webp", 1)
    found = find_images([named, tmp_path / "imgs", named])
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == ["one.webp", "imgs/a/1.JPG", "imgs/a/sub/0.jpeg", "imgs/b/2.png"]


@pytest.mark.parametrize("inputs, message", [
    ([], "no images given"),
    (["missing.png"], "missing.png: no such file or folder"),
    (["empty"], "empty: folder holds no image files"),
])
def test_find_images_errors_name_the_input(tmp_path, monkeypatch, inputs, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(PredictError, match=message):
        find_images(inputs)


def test_class_lists_are_checked(tmp_path):
    assert check_classnames(("a", "b")) == ["a", "b"]
    with pytest.raises(PredictError, match="class list is empty"):
        check_classnames([])
    with pytest.raises(PredictError, match=r"duplicate class names \['b'\]"):
        check_classnames(["a", "b", "c", "b", "b"])
    with pytest.raises(PredictError, match="class name 2 is empty"):
        check_classnames(["a", " "])
    f = tmp_path / "classes.txt"
    f.write_bytes("\ufeffsea lion\n\n  golden retriever \r\nsea_urchin\n".encode())
    assert read_classes_file(f) == ["sea lion", "golden retriever", "sea_urchin"]
    f.write_text("a\nb\na\n")
    with pytest.raises(PredictError, match=f"{f}: duplicate class names"):
        read_classes_file(f)
    with pytest.raises(PredictError, match="class file not found"):
        read_classes_file(tmp_path / "nope.txt")


def test_predict_files_matches_the_classifier_in_any_batch_size(tiny_base, tmp_path):
    clf = Classifier(MMLoP(tiny_base, PromptConfig(depth=2, init_std=0.5)), NAMES)
    paths = [_image(tmp_path / f"{i}.png", i, size=(30 + 3 * i, 36)) for i in range(5)]
    preds = list(predict_files(clf, paths, top_k=3, batch_size=2))
    probs = torch.softmax(clf.logits(paths), dim=-1)
    assert [p.path for p in preds] == [str(p) for p in paths]
    for pred, row in zip(preds, probs):
        top = row.argsort(descending=True)[:3]
        assert list(pred.classes) == [NAMES[i] for i in top]
        # Batches of 2 vs 5 differ only by float32 summation order in the towers: 1e-5 on probabilities.
        np.testing.assert_allclose(pred.probabilities, row[top].numpy(), atol=1e-5)
        assert list(pred.probabilities) == sorted(pred.probabilities, reverse=True)
    with pytest.raises(PredictError, match=r"--top-k 5: expected 1..4"):
        next(predict_files(clf, paths, top_k=5))


def test_unreadable_files_are_all_named_before_any_batch(tiny_base, tmp_path):
    clf = Classifier(MMLoP(tiny_base, PromptConfig(depth=1)), NAMES)
    good = _image(tmp_path / "good.png", 0)
    fake = tmp_path / "fake.png"
    fake.write_text("plain text")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(PredictError, match=r"2 file\(s\) cannot be read as images: .*fake.png \(not an image\)"
                                           r".*empty.jpg"):
        list(predict_files(clf, [good, fake, empty]))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:120])  # header intact, pixel data cut
    with pytest.raises(mmlop.DatasetError, match="truncated.png: cannot decode image"):
        list(predict_files(clf, [good, truncated]))


def test_outputs_are_csv_or_json_and_never_overwrite(tiny_base, tmp_path):
    clf = Classifier(MMLoP(tiny_base, PromptConfig(depth=1)), NAMES)
    preds = list(predict_files(clf, [_image(tmp_path / "a.png", 0), _image(tmp_path / "b.png", 1)], top_k=2))
    out = write_predictions(preds, tmp_path / "out.csv", classnames=NAMES)
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["path", "class_1", "probability_1", "class_2", "probability_2"]
    assert rows[1][0] == preds[0].path and rows[1][1] == preds[0].classes[0]
    assert float(rows[1][2]) == pytest.approx(preds[0].probabilities[0], abs=1e-6)
    with pytest.raises(PredictError, match="file exists; pass --overwrite"):
        write_predictions(preds, out, classnames=NAMES)
    with pytest.raises(PredictError, match="unknown format '.txt'"):
        write_predictions(preds, tmp_path / "out.txt", classnames=NAMES)
    js = json.loads(write_predictions(preds, tmp_path / "out.json", classnames=NAMES, prompts="p").read_text())
    assert js["format"] == "mmlop-predictions/1" and js["classes"] == NAMES and js["prompts"] == "p"
    assert js["predictions"][1]["top"][0] == {"class": preds[1].classes[0], "probability": preds[1].probabilities[0]}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


@pytest.fixture(scope="module")
def world_prompts(tmp_path_factory):
    """Random prompts (large init so they matter) saved for the built-in base, which loads by name."""
    folder = tmp_path_factory.mktemp("world") / "prompts"
    base = mmlop.load_base("mmlop-world")
    model = MMLoP(base, PromptConfig(depth=3, init_std=0.5), generator=torch.Generator().manual_seed(0))
    mmlop.save_prompts(model, folder)
    return folder, base


def test_cli_predict_writes_json_matching_the_classifier(world_prompts, tmp_path, capsys):
    prompts, base = world_prompts
    images = [_image(tmp_path / "imgs" / f"{i}.png", i, size=(64, 48)) for i in range(3)]
    out = tmp_path / "pred.json"
    assert main(["predict", "--prompts", str(prompts), "--classes", *NAMES, "--top-k", "2", "--batch-size", "2",
                 "--device", "cpu", "--output", str(out), "--", str(tmp_path / "imgs")]) == 0
    err = capsys.readouterr().err
    assert "predict: 2/3 images" in err and "predict: 3/3 images" in err  # stderr is not a terminal here
    js = json.loads(out.read_text())
    clf = Classifier.from_pretrained(prompts, base, NAMES)
    probs = torch.softmax(clf.logits(images), dim=-1)
    for pred, row in zip(js["predictions"], probs):
        assert pred["top"][0]["class"] == NAMES[int(row.argmax())]
        assert pred["top"][0]["probability"] == pytest.approx(float(row.max()), abs=1e-5)
    # Images first, then the options: CSV on stdout; the class list from a file.
    (tmp_path / "classes.txt").write_text("\n".join(NAMES) + "\n")
    assert main(["predict", str(images[0]), "--prompts", str(prompts), "--classes-file", str(tmp_path / "classes.txt"),
                 "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "path,class_1,probability_1" and lines[1].startswith(f"{images[0]},")


def test_cli_predict_errors_are_one_line_and_exit_2(world_prompts, tmp_path, capsys):
    prompts, _ = world_prompts
    img = _image(tmp_path / "a.png", 0)
    (tmp_path / "notes.png").write_text("text")
    cases = [
        (["--prompts", str(tmp_path), "--classes", "a", "b", "--", str(img)], "has no mmlop_config.json"),
        (["--prompts", str(tmp_path / "nope"), "--classes", "a", "--", str(img)], "not a folder"),
        (["--prompts", str(prompts), "--classes", "a", "a", "--", str(img)], "duplicate class names ['a']"),
        (["--prompts", str(prompts), "--classes", "a", "b", "--", str(tmp_path / "notes.png")], "not an image"),
        (["--prompts", str(prompts), "--classes", "a", "--output", str(tmp_path / "o.xlsx"), "--", str(img)],
         "unknown format '.xlsx'"),
    ]
    for args, message in cases:
        assert main(["predict", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("mmlop predict: error:") and message in err and "\n" not in err, err


def test_progress_off_a_terminal_is_a_few_plain_lines(capsys):
    from mmlop.predictions import _progress

    bar = _progress(1000, True)
    for _ in range(100):
        bar.update(10)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "predict: 1000/1000 images" and len(lines) == 10
    assert _progress(5, False) is None
