import torch
from torch.utils.data import Dataset

from mmlop.training.batches import EpochBatchSampler, SeededViews


def test_batches_are_deterministic_and_drop_the_partial_one():
    a = list(EpochBatchSampler(10, 4, seed=1, epoch=0))
    assert a == list(EpochBatchSampler(10, 4, seed=1, epoch=0))
    assert len(a) == 2 and all(len(b) == 4 for b in a)
    assert a != list(EpochBatchSampler(10, 4, seed=1, epoch=1))
    # Fewer items than one batch: keep the partial batch.
    assert [len(b) for b in EpochBatchSampler(3, 4, seed=1, epoch=0)] == [3]
    assert len(list(EpochBatchSampler(100, 4, seed=1, epoch=0, max_steps=5))) == 5


def test_ranks_partition_every_global_batch():
    whole = list(EpochBatchSampler(12, 4, seed=2, epoch=3))
    r0 = list(EpochBatchSampler(12, 4, seed=2, epoch=3, rank=0, world_size=2))
    r1 = list(EpochBatchSampler(12, 4, seed=2, epoch=3, rank=1, world_size=2))
    for g, a, b in zip(whole, r0, r1):
        assert sorted(a + b) == sorted(g)


class Noisy(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return torch.randn(3), i


def test_views_depend_only_on_seed_epoch_index_and_spare_the_global_rng():
    views = SeededViews(Noisy(), seed=4)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    x1, y1, key = views[(2, 3)]
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)
    x2, _, _ = views[(2, 3)]
    assert torch.equal(x1, x2) and y1 == 3 and key.tolist() == [2, 3, -1]
    assert not torch.equal(x1, views[(3, 3)][0])
