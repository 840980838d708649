"""ImageDataset and the protocol transforms."""

import pytest
import torch
from conftest import write_image
from PIL import Image

from mmlop.data import DatasetError, ImageDataset, Items
from mmlop.data.transforms import CLIP_MEAN, CLIP_STD, build_test_transform, build_train_transform


def test_dataset_returns_normalised_tensors(tmp_path):
    Image.new("L", (40, 20), 128).save(tmp_path / "gray.png")  # converted to RGB
    write_image(str(tmp_path / "rgb.png"))
    items = Items.from_pairs(str(tmp_path), ["gray.png", "rgb.png"], [3, 1])
    ds = ImageDataset(items, build_test_transform(16, CLIP_MEAN, CLIP_STD))
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and y == 3
    expected = (128 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    # A constant image resizes to the same constant (interpolation weights sum to 1), leaving float32 rounding of the
    # normalisation (~1e-7); 1e-3 still catches a wrong mean or std, which moves the value by more than 0.1.
    assert torch.allclose(x[:, 8, 8], expected, atol=1e-3)
    torch.manual_seed(0)
    xt, _ = ImageDataset(items, build_train_transform(16))[1]
    assert xt.shape == (3, 16, 16)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    xb, yb = next(iter(loader))
    assert xb.shape == (2, 3, 16, 16) and yb.tolist() == [3, 1]


def test_corrupt_and_missing_images_name_the_file(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    items = Items.from_pairs(str(tmp_path), ["bad.jpg", "gone.jpg"], [0, 0])
    ds = ImageDataset(items, build_test_transform(8))
    with pytest.raises(DatasetError, match=r"bad.jpg: cannot decode image"):
        ds[0]
    with pytest.raises(DatasetError, match=r"gone.jpg: image not found"):
        ds[1]


def test_transform_arguments_are_validated():
    with pytest.raises(ValueError, match="image_size must be a positive int"):
        build_train_transform(0)
    with pytest.raises(ValueError, match="mean and std must have 3 entries"):
        build_test_transform(8, (0.5,), (0.5,))
