import numpy as np
import pytest
import torch

import helpers as h


def test_independent_coordinates_have_near_zero_correlation():
    codes = torch.randn(20000, 8, generator=torch.Generator().manual_seed(0))
    assert h.latent_correlation(codes) < 0.02
    assert h.gaussian_total_correlation(codes) < 0.001


def test_duplicated_coordinates_give_the_known_value():
    x, y = torch.randn(2, 20000, 1, generator=torch.Generator().manual_seed(1))
    codes = torch.cat([x, 3 * x, y], 1)  # one pair with |r| = 1, two with r ~ 0
    assert h.latent_correlation(codes) == pytest.approx(1 / 3, abs=0.01)
    assert h.latent_correlation(torch.cat([x, -x], 1)) == pytest.approx(1.0)


def test_gaussian_total_correlation_matches_the_formula():
    rho = 0.6
    x, e = torch.randn(2, 200000, generator=torch.Generator().manual_seed(2))
    codes = torch.stack([x, rho * x + (1 - rho**2) ** 0.5 * e], 1)
    assert h.gaussian_total_correlation(codes) == pytest.approx(-0.5 * np.log(1 - rho**2) / 2, rel=0.03)


def test_bootstrap_interval_brackets_the_value():
    codes = torch.randn(2000, 4, generator=torch.Generator().manual_seed(3))
    codes[:, 1] += codes[:, 0]
    value, lo, hi = h.bootstrap(h.latent_correlation, codes, n_boot=50)
    assert lo <= value <= hi and hi - lo < 0.1


def test_balanced_subset_counts_reproducibility_and_no_duplicates():
    labels = h.load_mnist(train=True)[1]
    idx = h.balanced_subset(labels, 50, seed=4)
    assert labels[idx].bincount(minlength=10).tolist() == [5] * 10
    assert len(set(idx.tolist())) == 50
    assert torch.equal(idx, h.balanced_subset(labels, 50, seed=4))
    assert not torch.equal(idx, h.balanced_subset(labels, 50, seed=5))


def test_balanced_subset_bad_arguments():
    labels = torch.arange(10).repeat(3)
    with pytest.raises(ValueError, match="n must be a positive multiple"):
        h.balanced_subset(labels, 15, seed=0)
    with pytest.raises(ValueError, match="n=40 asks for 4 labels of class 0, but only 3"):
        h.balanced_subset(labels, 40, seed=0)


def test_frozen_encoder_stays_unchanged_while_the_head_trains():
    cfg = h.AEConfig(d=4, channels=(4, 8, 8), hidden=32)
    state = {k: v.clone() for k, v in h.Encoder(cfg).state_dict().items()}
    images, labels = h.load_mnist(train=False)
    small = h.TransferConfig(steps=15)
    frozen = h.train_few_label("frozen", state, cfg, images[:20], labels[:20], images[:200], small)
    for k, v in frozen.encoder.state_dict().items():
        assert torch.equal(v.cpu(), state[k]), k
    untrained = h.train_few_label("frozen", state, cfg, images[:20], labels[:20], images[:200],
                                  h.TransferConfig(steps=0))
    assert not torch.equal(frozen.head[0].weight, untrained.head[0].weight)
    tuned = h.train_few_label("finetune", state, cfg, images[:20], labels[:20], images[:200], small)
    assert any(not torch.equal(v.cpu(), state[k]) for k, v in tuned.encoder.state_dict().items())
    with pytest.raises(ValueError, match="arm"):
        h.train_few_label("linear", state, cfg, images[:20], labels[:20], images[:200], small)
