import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

COLOUR_CLASSES = ["red", "green", "blue", "yellow", "white", "black"]
COLOURS = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 220, 20), (240, 240, 240), (15, 15, 15)]


@pytest.fixture(scope="session")
def colour_dataset(tmp_path_factory):
    """``<root>/{train,test}/<class>/*.png``: noisy solid colours, 6 classes."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 4)):
        for name, rgb in zip(COLOUR_CLASSES, COLOURS):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                arr = np.clip(np.array(rgb) + rng.normal(0, 25, (36, 36, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(folder / f"{i}.png")
    return root
