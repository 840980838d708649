"""``ImageDataset``: items to ``(tensor, label)`` for a DataLoader, with clear errors for unreadable images."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image
from torch.utils.data import Dataset

from mmlop.data.errors import DatasetError
from mmlop.data.items import Items

__all__ = ["ImageDataset", "open_rgb"]


def open_rgb(path: str) -> Image.Image:
    """Opens an image with PIL and converts it to RGB (decoding it fully).

    Raises:
        DatasetError: Naming the file when it is missing, truncated or not an image.
    """
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise DatasetError(f"{path}: image not found; expected a readable image file") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{path}: cannot decode image ({e}); expected a readable image file") from None


class ImageDataset(Dataset):
    """A map-style dataset over :class:`Items` returning ``(transform(image), label)``.

    Args:
        items: The images and labels.
        transform: Applied to the RGB PIL image (e.g. ``build_train_transform(...)``); None returns the image.
    """

    def __init__(self, items: Items, transform: Callable | None = None) -> None:
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, label = self.items[i]
        image = open_rgb(path)
        return (self.transform(image) if self.transform is not None else image), label
