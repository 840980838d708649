from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from mmlop.data.transforms import CLIP_MEAN, CLIP_STD
from mmlop.model.factory import BaseCLIP
from mmlop.world.model import PREPROCESS


def test_the_one_clip_normalisation_is_open_clips_and_everyone_uses_it():
    assert CLIP_MEAN == tuple(OPENAI_DATASET_MEAN) and CLIP_STD == tuple(OPENAI_DATASET_STD)
    assert (PREPROCESS.mean, PREPROCESS.std) == (CLIP_MEAN, CLIP_STD)
    assert (BaseCLIP.mean, BaseCLIP.std) == (CLIP_MEAN, CLIP_STD)
