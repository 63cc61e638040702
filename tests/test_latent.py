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


def test_effective_rank_is_d_for_uncorrelated_codes_and_1_for_copies():
    gen = torch.Generator().manual_seed(5)
    codes = torch.randn(50000, 6, generator=gen)
    assert h.effective_rank(codes) == pytest.approx(6, rel=0.01)
    x = torch.randn(5000, 1, generator=gen)
    assert h.effective_rank(torch.cat([x, 2 * x, -x, 0.5 * x], 1)) == pytest.approx(1.0)
    half = torch.cat([x, -3 * x, torch.randn(5000, 1, generator=gen)], 1)  # two copies and one free coordinate
    assert h.effective_rank(half) == pytest.approx((2 + 1) ** 2 / (2 ** 2 + 1), rel=0.03)


def test_paired_interval_contains_zero_for_identical_arms_and_excludes_it_for_a_shift():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 0.9, size=10)
    assert h.paired_interval(a, a) == (0.0, 0.0, 0.0)
    mean, low, high = h.paired_interval(a + 0.05 + rng.normal(0, 0.01, 10), a)
    assert low > 0 and mean == pytest.approx(0.05, abs=0.01)
    noise = rng.normal(0, 0.02, 10)
    mean, low, high = h.paired_interval(a + noise, a)
    assert low < 0 < high
    with pytest.raises(ValueError, match="paired"):
        h.paired_interval([0.5], [0.4])


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


def test_random_shift_moves_each_image_by_its_own_offset():
    """Every image is rolled by its own (row, column) offset in [-2, 2], as torch.roll would do."""
    x = torch.rand(64, 1, 32, 32)
    shifted = h.random_shift(x, 2, torch.Generator().manual_seed(0))
    offsets = torch.randint(-2, 3, (2, 64), generator=torch.Generator().manual_seed(0))
    for img, out, a, b in zip(x, shifted, *offsets.tolist()):
        assert torch.equal(out, torch.roll(img, (a, b), dims=(1, 2)))
    assert len({tuple(o) for o in offsets.T.tolist()}) > 10  # the offsets really vary
    assert h.random_shift(x, 0, torch.Generator()) is x


def test_frozen_encoder_stays_unchanged_while_the_head_trains():
    cfg = h.AEConfig(d=4, channels=(4, 8, 8), hidden=(32,))
    state = {k: v.clone() for k, v in h.Encoder(cfg).state_dict().items()}
    images, labels = h.load_mnist(train=False)
    small = h.TransferConfig(steps=15)
    frozen = h.train_few_label("frozen", state, cfg, images[:20], labels[:20], images[:200], small)
    for k, v in frozen.encoder.state_dict().items():
        assert torch.equal(v.cpu(), state[k]), k
    untrained = h.train_few_label("frozen", state, cfg, images[:20], labels[:20], images[:200],
                                  h.TransferConfig(steps=0))
    assert not torch.equal(frozen.head[0].weight, untrained.head[0].weight)
    self_trained = h.train_few_label("selftrain", state, cfg, images[:20], labels[:20], images[:200],
                                     h.TransferConfig(steps=15, pseudo_fractions=(0.5,), pseudo_steps=5))
    for k, v in self_trained.encoder.state_dict().items():
        assert torch.equal(v.cpu(), state[k]), k
    assert not torch.equal(self_trained.head[0].weight, frozen.head[0].weight)
    tuned = h.train_few_label("finetune", state, cfg, images[:20], labels[:20], images[:200], small)
    assert any(not torch.equal(v.cpu(), state[k]) for k, v in tuned.encoder.state_dict().items())
    with pytest.raises(ValueError, match="arm"):
        h.train_few_label("linear", state, cfg, images[:20], labels[:20], images[:200], small)


def test_pseudo_labels_take_the_most_confident_the_same_number_per_class():
    # A "head" that returns fixed logits: class = i % 3, confidence rising with i within each class.
    n = 30
    logits = torch.zeros(n, 3)
    logits[torch.arange(n), torch.arange(n) % 3] = torch.arange(n).float() / 10
    keep, pseudo = h.confident_pseudo_labels(lambda pool: pool, logits, fraction=0.4)
    assert pseudo.bincount(minlength=3).tolist() == [4, 4, 4]
    assert torch.equal(pseudo, keep % 3)
    assert sorted(keep.tolist()) == list(range(18, 30))  # the four most confident of each class


def test_self_training_lifts_a_head_on_clustered_codes():
    # One Gaussian cluster per class and one label per class: wherever that label sits in its
    # cluster, the supervised boundaries are off; the unlabelled pool shows where the clusters are.
    gains = []
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        centres = torch.randn(10, 4, generator=gen) * 4
        pool_labels = torch.arange(10).repeat_interleave(200)
        pool = centres[pool_labels] + torch.randn(2000, 4, generator=gen)
        config = h.TransferConfig(steps=100, pseudo_fractions=(0.3, 0.6, 0.9), pseudo_steps=200)
        model = h.FewLabelClassifier(torch.nn.Identity(), 4, 32)
        idx = torch.cat([torch.nonzero(pool_labels == c).flatten()[:1] for c in range(10)])
        h.fit_classifier(model.head, pool[idx], pool_labels[idx], config.steps, 128, torch.Generator().manual_seed(1),
                         config.lr, config.weight_decay)
        supervised = h.accuracy(model.head, pool, pool_labels)
        h.self_train_head(model, pool[idx], pool_labels[idx], pool, config, torch.Generator().manual_seed(1))
        gains.append(h.accuracy(model.head, pool, pool_labels) - supervised)
    assert min(gains) > 0 and np.mean(gains) > 0.05, gains


def test_transfer_config_rejects_bad_self_training_settings():
    with pytest.raises(ValueError, match="pseudo_fractions"):
        h.TransferConfig(pseudo_fractions=(0.5, 1.5))
    with pytest.raises(ValueError, match="labelled_share"):
        h.TransferConfig(labelled_share=0)


def test_transfer_rows_report_training_and_test_accuracy_for_every_arm_and_draw():
    cfg = h.AEConfig(d=4, channels=(4, 8, 8), hidden=(32,))
    state = h.Encoder(cfg).state_dict()
    images, labels = h.load_mnist(train=False)
    small = h.TransferConfig(steps=10, pseudo_fractions=(0.5,), pseudo_steps=5)
    rows = h.transfer_experiment(cfg, state, images[:400], labels[:400], images[400:600], labels[400:600],
                                 {10: 2, 20: 1}, {arm: small for arm in h.ALL_ARMS},
                                 dict(dims=2, neighbors=10, components=10))
    assert len(rows) == 3 * len(h.ARMS) and {r["arm"] for r in rows} == set(h.ARMS)
    assert {(r["labels"], r["draw"]) for r in rows} == {(10, 0), (10, 1), (20, 0)}
    for r in rows:
        assert 0 <= r["train accuracy"] <= 1 and 0 <= r["accuracy"] <= 1
    # The batched frozen heads give what a separate run of the frozen arm gives on the same draw and seed.
    idx = h.balanced_subset(labels[:400], 10, seed=1000 * 10 + 1)
    alone = h.train_few_label("frozen", state, cfg, images[idx], labels[idx], images[:400], small, seed=1)
    frozen = next(r for r in rows if (r["labels"], r["draw"], r["arm"]) == (10, 1, "frozen"))
    assert frozen["accuracy"] == pytest.approx(h.accuracy(alone, images[400:600], labels[400:600]), abs=1e-9)


def test_each_arm_takes_its_own_validated_settings():
    for arm in h.ALL_ARMS:
        config, settings = h.arm_config(arm), h.RECIPE.transfer_settings[arm]
        assert {k: getattr(config, k) for k in settings if k != "steps"} == {k: v for k, v in settings.items() if k != "steps"}
        assert config.steps <= settings["steps"], arm  # the smoke mode caps the steps
    with pytest.raises(ValueError, match="arm"):
        h.arm_config("cluster")  # not a train_few_label arm


def test_the_correlation_spectrum_is_flat_for_independent_codes_and_peaked_for_copies():
    x = torch.randn(20000, 8, generator=torch.Generator().manual_seed(0))
    flat = h.correlation_spectrum(x)
    assert flat.sum() == pytest.approx(1.0) and np.all(np.diff(flat) <= 1e-12)
    assert np.allclose(flat, 1 / 8, atol=0.01)
    copies = h.correlation_spectrum(torch.cat([x[:, :1]] * 4 + [x[:, 1:2]], 1))
    assert copies[0] == pytest.approx(4 / 5, abs=0.01) and copies[-1] == pytest.approx(0, abs=1e-6)


def test_the_winner_rule_names_a_side_only_when_its_interval_excludes_zero():
    ahead = h.verdict([5.0, 5.2, 4.9, 5.1], [4.0, 4.1, 4.0, 4.2], names=("fine-tuned", "frozen"))
    assert ahead["winner"] == "fine-tuned" and ahead["low"] > 0
    # an FD: lower wins, so the same numbers name the other side
    assert h.verdict([5.0, 5.2, 4.9, 5.1], [4.0, 4.1, 4.0, 4.2], ("gan", "mixture"), higher_wins=False)["winner"] == "mixture"
    noisy = h.verdict([5.0, 3.0, 6.0], [4.0, 4.5, 4.4], names=("a", "b"))  # mean +0.37 but the interval spans 0
    assert noisy["winner"] == "level" and noisy["low"] < 0 < noisy["high"]


def test_gans_trained_side_by_side_are_the_ones_a_single_thread_trains(monkeypatch, checkpoint_dir):
    """Workers of one thread each (train_missing_gans) give bit for bit the weights one thread gives here, as the
    search's one-thread processes do: the report's models are the search's."""
    from conftest import patch_everywhere

    codes, labels = torch.randn(600, 4), torch.randint(0, 10, (600,))
    configs = [h.GANConfig(noise_dim=2, latent_dim=4, hidden=16, steps=30, seed=s, train_codes=600) for s in (0, 1)]
    configs.append(h.GANConfig(noise_dim=2, latent_dim=4, hidden=16, steps=20, n_classes=10, aux_weight=0.1,
                               aux_steps=10, train_codes=600))
    patch_everywhere(monkeypatch, "cores", lambda: 2)
    h.train_missing_gans(configs, codes, labels)
    assert all(h.checkpoint_path(c).exists() for c in configs)  # every one trained by a worker
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for config in configs:
            worker = h.latent_gan(config, required=True)[0]
            h.checkpoint_path(config).unlink()
            here = h.latent_gan(config, codes, labels)[0]
            assert all(torch.equal(p, q) for p, q in zip(worker.state_dict().values(), here.state_dict().values()))
    finally:
        torch.set_num_threads(threads)
