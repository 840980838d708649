"""Datasets in the CoOp layout, few-shot sampling, base/novel splits and image preprocessing.

Everything a trainer needs is re-exported here; the submodules hold the details.
"""

from mmlop.data.catalog import DATASETS, DatasetSpec, register_dataset
from mmlop.data.errors import DatasetError
from mmlop.data.fewshot import sample_fewshot
from mmlop.data.image import ImageDataset
from mmlop.data.items import Items
from mmlop.data.loading import load_dataset
from mmlop.data.splits import DatasetSplits, subsample_classes

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetSpec",
    "DatasetSplits",
    "ImageDataset",
    "Items",
    "load_dataset",
    "register_dataset",
    "sample_fewshot",
    "subsample_classes",
]
