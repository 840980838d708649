"""Few-shot source resolution (protocol §2.2.4-5): reference pickles, our JSON cache, fresh draws."""

import json
import os

import pytest
from test_pickle_compat import make_datum_pickle

from mmlop.data import DatasetError, load_dataset

OLD = "/old/machine/DATA"


def snapshot(root):
    return {
        os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, files in os.walk(root) if "split_fewshot" not in d for f in files
    }


def pets_records(full, picks_per_class, split="train"):
    """Datum rows for the first ``picks_per_class`` items of each class, with absolute foreign paths."""
    items, taken, rows = getattr(full, split), {}, []
    for rel, label in zip(items.rel_paths, items.labels.tolist()):
        if taken.get(label, 0) < picks_per_class:
            taken[label] = taken.get(label, 0) + 1
            rows.append((f"{OLD}/oxford_pets/images/{rel}", label, full.classnames[label]))
    return rows


def write_pets_pickle(root, full, k=2, seed=1, train=None, val=None):
    path = root / "oxford_pets" / "split_fewshot" / f"shot_{k}-seed_{seed}.pkl"
    path.parent.mkdir(exist_ok=True)
    rows = {"train": pets_records(full, k) if train is None else train, "val": pets_records(full, min(k, 4), "val") if val is None else val}
    make_datum_pickle(path, rows)
    return path, rows


def test_reference_pickle_is_rerooted_and_preferred(pets_root):
    full = load_dataset("oxford_pets", pets_root, num_shots=0)
    pkl, rows = write_pets_pickle(pets_root, full)
    ds = load_dataset("oxford_pets", pets_root, num_shots=2, seed=1)
    prefix = os.path.join(str(pets_root), "oxford_pets", "images")
    assert ds.train.paths == [r[0].replace(f"{OLD}/oxford_pets/images", prefix) for r in rows["train"]]
    assert ds.val.labels.tolist() == [r[1] for r in rows["val"]]
    assert ds.provenance["fewshot_source"] == "reference_pickle" and ds.provenance["fewshot_cache"] == str(pkl)
    own = json.loads((pkl.parent / "shot_2-seed_1.json").read_text())  # recorded in our format too
    assert own["source"] == "reference_pickle" and own["format"] == "mmlop-fewshot/1"
    assert own["train"][0] == [rows["train"][0][0].split("/images/")[1], rows["train"][0][1], rows["train"][0][2]]
    # a base run uses the same shots, relabelled
    base = load_dataset("oxford_pets", pets_root, num_shots=2, seed=1, subsample="base")
    assert base.train.paths == [p for p, lab in zip(ds.train.paths, ds.train.labels) if lab < 19]


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda rows: rows["train"].append((f"{OLD}/oxford_pets/images/nope.png", 0, "breed_00")), "nope.png is not in the current train split"),
        (lambda rows: rows["train"].__setitem__(0, (rows["train"][0][0], 5, "breed_05")), r"entry 0 of 'train'.*differs from the split"),
        (lambda rows: rows["train"].__setitem__(0, ("/elsewhere/x.png", 0, "breed_00")), "does not contain 'oxford_pets/images/'"),
        (lambda rows: rows["train"].extend(rows["train"][:1]), "has 3 train items; expected at most 2"),
    ],
)
def test_invalid_pickle_is_refused_with_reason(pets_root, mutate, match):
    full = load_dataset("oxford_pets", pets_root, num_shots=0)
    rows = {"train": pets_records(full, 2), "val": pets_records(full, 2, "val")}
    mutate(rows)
    write_pets_pickle(pets_root, full, train=rows["train"], val=rows["val"])
    with pytest.raises(DatasetError, match=match):
        load_dataset("oxford_pets", pets_root, num_shots=2, fewshot_source="reference_pickle")
    with pytest.warns(UserWarning, match=match):
        ds = load_dataset("oxford_pets", pets_root, num_shots=2)  # auto falls back to a fresh draw
    assert ds.provenance["fewshot_source"] == "sampled"


def test_missing_pickle_with_reference_source(pets_root):
    with pytest.raises(DatasetError, match=r"shot_8-seed_3.pkl: reference few-shot pickle not found"):
        load_dataset("oxford_pets", pets_root, num_shots=8, seed=3, fewshot_source="reference_pickle")


def test_own_cache_written_atomically_then_reused_and_stale_detected(pets_root):
    before = snapshot(pets_root)
    first = load_dataset("oxford_pets", pets_root, num_shots=4, seed=3)
    cache = pets_root / "oxford_pets" / "split_fewshot" / "shot_4-seed_3.json"
    data = json.loads(cache.read_text())
    assert data["source"] == "sampled" and data["num_shots"] == 4 and data["seed"] == 3
    assert data["dataset"] == "OxfordPets" and len(data["split_sha256"]) == 64
    assert os.listdir(cache.parent) == ["shot_4-seed_3.json"]  # no temporary left behind
    assert snapshot(pets_root) == before  # nothing else under the root changed
    second = load_dataset("oxford_pets", pets_root, num_shots=4, seed=3, fewshot_source="own")
    assert second.provenance["fewshot_source"] == "own_cache" and second.train == first.train
    split = pets_root / "oxford_pets" / "split_zhou_OxfordPets.json"
    obj = json.loads(split.read_text())
    obj["test"] = obj["test"][:-1]
    split.write_text(json.dumps(obj))
    with pytest.warns(UserWarning, match=r"split_sha256 is .*\(stale or foreign cache\)"):
        third = load_dataset("oxford_pets", pets_root, num_shots=4, seed=3)
    assert third.provenance["fewshot_source"] == "sampled" and third.train == first.train


def test_cache_dir_keeps_the_root_untouched(pets_root, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("cache")
    before = snapshot(pets_root)
    ds = load_dataset("oxford_pets", pets_root, num_shots=1, seed=2, cache_dir=cache_dir)
    assert ds.provenance["fewshot_cache"] == str(cache_dir / "oxford_pets" / "shot_1-seed_2.json")
    assert not (pets_root / "oxford_pets" / "split_fewshot").exists()
    assert snapshot(pets_root) == before


def test_unwritable_cache_warns_and_continues(pets_root, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="cannot write the few-shot cache"):
        ds = load_dataset("oxford_pets", pets_root, num_shots=1, cache_dir=blocker)
    assert ds.provenance["fewshot_cache"] is None and len(ds.train) == 37


def test_imagenet_reference_pickle_train_only(imagenet_family_root, tmp_path):
    full = load_dataset("imagenet", imagenet_family_root, num_shots=0)
    rows = [(f"{OLD}/imagenet/images/{r}", lab, full.classnames[lab]) for r, lab in zip(full.train.rel_paths, full.train.labels.tolist()) if r.endswith("_001.JPEG")]
    pkl = imagenet_family_root / "imagenet" / "split_fewshot" / "shot_1-seed_1.pkl"
    pkl.parent.mkdir(exist_ok=True)
    try:
        make_datum_pickle(pkl, {"train": rows})
        ds = load_dataset("imagenet", imagenet_family_root, num_shots=1, seed=1, cache_dir=tmp_path)
        assert ds.provenance["fewshot_source"] == "reference_pickle"
        assert ds.train.rel_paths == [r[0].split("/imagenet/images/")[1] for r in rows]
        assert len(ds.val) == 0
    finally:
        pkl.unlink()
        pkl.parent.rmdir()


def test_imagenet_preprocessed_pickle_gives_reference_order(imagenet_family_root, tmp_path):
    full = load_dataset("imagenet", imagenet_family_root, num_shots=0)
    order = list(range(len(full.train)))[::-1]
    rows = {
        "train": [(f"{OLD}/imagenet/images/{full.train.rel_path(i)}", int(full.train.labels[i]), full.classnames[full.train.labels[i]]) for i in order],
        "test": [(f"{OLD}/imagenet/images/{r}", lab, full.classnames[lab]) for r, lab in zip(full.test.rel_paths, full.test.labels.tolist())],
    }
    pkl = imagenet_family_root / "imagenet" / "preprocessed.pkl"
    try:
        make_datum_pickle(pkl, rows)
        ds = load_dataset("imagenet", imagenet_family_root, num_shots=0, imagenet_file_order="filesystem")
        assert ds.train.paths == [full.train.paths[i] for i in order]
        assert ds.provenance["split_sha256"] != full.provenance["split_sha256"]  # order is part of the listing
    finally:
        pkl.unlink()
