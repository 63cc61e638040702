"""The validation protocol and section 3's extra arms: batched heads, the encoder-lr-0 control,
cluster-then-label."""

import json

import numpy as np
import pytest
import torch

import helpers as h
from conftest import patch_everywhere

TINY = h.AEConfig(d=4, channels=(4, 8, 8), hidden=(32,))


def test_validation_parts_are_disjoint_training_images_and_the_test_set_is_refused():
    fit_x, _ = h.validation_data("fit")
    val_x, _ = h.validation_data("validation")
    train_x, _ = h.load_mnist(train=True)
    assert len(fit_x) == h.RECIPE.ae_train_size and len(val_x) == h.RECIPE.ae_val_size
    assert torch.equal(val_x, train_x[h.RECIPE.ae_train_size:h.RECIPE.ae_train_size + h.RECIPE.ae_val_size])
    with pytest.raises(ValueError, match="test set"):
        h.validation_data("test")
    h.refuse_test_images(val_x[:100])  # training images pass
    test_x, _ = h.load_mnist(train=False)
    with pytest.raises(ValueError, match="1 of these 101 images are test images"):
        h.refuse_test_images(torch.cat([val_x[:100], test_x[7:8]]))


def _draws(labels, n, seeds):
    return [h.balanced_subset(labels, n, seed=100 + s) for s in seeds]


def test_batched_heads_match_separate_runs_with_their_own_seeds_and_batches():
    images, labels = h.load_mnist(train=False)
    images, labels = images[:600], labels[:600]
    state = h.Encoder(TINY).state_dict()
    encoder = h.Encoder(TINY)
    encoder.load_state_dict(state)
    pool_codes = h.encode(encoder, images)
    config = h.TransferConfig(steps=30, batch_size=8)
    seeds = [0, 1, 2]
    draws = _draws(labels, 20, seeds)
    batched = h.frozen_heads(state, TINY, pool_codes, draws, [labels[i] for i in draws], seeds, config)
    for model, idx, seed in zip(batched, draws, seeds):
        alone = h.train_few_label("frozen", state, TINY, images[idx], labels[idx], images, config, seed=seed,
                                  unlabeled_codes=pool_codes)
        for a, b in zip(alone.head.parameters(), model.head.parameters()):
            assert torch.allclose(a, b, atol=1e-5), (seed, (a - b).abs().max())
        assert not torch.allclose(alone.head[0].weight, batched[(seed + 1) % 3].head[0].weight, atol=1e-3)
        with torch.no_grad():
            assert torch.equal(alone(images).argmax(1), model(images).argmax(1))


def test_fine_tuning_with_encoder_learning_rate_zero_is_the_frozen_arm():
    images, labels = h.load_mnist(train=False)
    images, labels = images[:600], labels[:600]
    state = h.Encoder(TINY).state_dict()
    idx = h.balanced_subset(labels, 30, seed=5)
    config = h.TransferConfig(steps=40, batch_size=16, encoder_lr=0.0)
    # In float32: under bfloat16 autocast the fine-tuned arm's head sees codes computed in bfloat16, the
    # frozen arm's codes are encoded in float32 (the report's control runs in float32 for that reason).
    frozen = h.train_few_label("frozen", state, TINY, images[idx], labels[idx], images, config, seed=3, precision="float32")
    tuned = h.train_few_label("finetune", state, TINY, images[idx], labels[idx], images, config, seed=3,
                              precision="float32")
    for a, b in zip(frozen.encoder.state_dict().values(), tuned.encoder.state_dict().values()):
        assert torch.equal(a, b)  # the encoder, BatchNorm statistics included, did not move
    with torch.no_grad():
        diff = (frozen(images) - tuned(images)).abs().max()
    assert diff < 1e-4, diff
    assert h.accuracy(frozen, images, labels) == h.accuracy(tuned, images, labels)
    # a positive encoder learning rate does move it: the control is not vacuous
    moving = h.train_few_label("finetune", state, TINY, images[idx], labels[idx], images,
                               h.TransferConfig(steps=40, batch_size=16, encoder_lr=1e-3), seed=3)
    assert not torch.equal(frozen.encoder.trunk[0].weight, moving.encoder.trunk[0].weight)


def test_batchnorm_mode_decides_whether_the_statistics_move():
    images, labels = h.load_mnist(train=False)
    state = h.Encoder(TINY).state_dict()
    idx = h.balanced_subset(labels[:300], 20, seed=1)
    for mode, moves in (("frozen", False), ("train", True)):
        config = h.TransferConfig(steps=5, batchnorm=mode)
        model = h.train_few_label("finetune", state, TINY, images[idx], labels[idx], images[:300], config)
        same = torch.equal(model.encoder.trunk[1].running_mean, state["trunk.1.running_mean"])
        assert same != moves, mode
    with pytest.raises(ValueError, match="batchnorm"):
        h.TransferConfig(batchnorm="eval")


def test_cluster_then_label_names_well_separated_clusters_from_one_label_each():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 6, generator=gen) * 8
    truth = torch.arange(10).repeat_interleave(150)
    codes = centres[truth] + torch.randn(len(truth), 6, generator=gen)
    clusters = h.CodeClusters(codes, dims=4, neighbors=15, components=10, seed=0)
    labelled = np.array([int(torch.nonzero(truth == c)[0]) for c in range(10)])
    names = clusters.name_clusters(labelled, truth[labelled].numpy())
    new = centres[truth[:300]] + torch.randn(300, 6, generator=gen)
    accuracy = (clusters.predict(names, clusters.responsibilities(new)) == truth[:300].numpy()).mean()
    assert accuracy > 0.95
    # with the labels permuted, the names follow them: the naming reads the labels
    shuffled = clusters.name_clusters(labelled, ((truth[labelled] + 1) % 10).numpy())
    assert (clusters.predict(shuffled, clusters.responsibilities(new)) == truth[:300].numpy()).mean() < 0.05


def test_small_pools_give_umaps_own_neighbour_graph_from_precomputed_distances(monkeypatch):
    """Below UMAP's exact-neighbour size the distances come precomputed (one matrix, not one Python call per
    pair): the fuzzy neighbour graph is UMAP's own, up to float rounding, and new codes transform alike."""
    from ex3lib import transfer

    codes = torch.randn(300, 6, generator=torch.Generator().manual_seed(0))
    fast = h.CodeClusters(codes, dims=2, neighbors=10, components=10)
    monkeypatch.setattr(transfer, "EXACT_NEIGHBOURS_BELOW", 0)  # UMAP's own exact path
    slow = h.CodeClusters(codes, dims=2, neighbors=10, components=10)
    assert fast.fitted is not None and slow.fitted is None
    assert np.abs(fast.projection.graph_.toarray() - slow.projection.graph_.toarray()).max() < 1e-4
    new = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    assert fast.responsibilities(new).shape == slow.responsibilities(new).shape == (50, 10)


def test_code_clusters_keep_umaps_compiled_functions_on_disk(monkeypatch):
    from pathlib import Path

    from numba.core.caching import FunctionCache, NullCache
    from umap import umap_

    functions = (umap_.smooth_knn_dist, umap_.compute_membership_strengths)
    for function in functions:  # as umap-learn ships them, whatever an earlier test did
        monkeypatch.setattr(function, "_cache", NullCache())
    codes = torch.randn(300, 4, generator=torch.Generator().manual_seed(0))
    h.CodeClusters(codes, dims=2, neighbors=10, components=10)  # compiles, or loads what an earlier process compiled
    for function in functions:
        assert isinstance(function._cache, FunctionCache), function
        assert list(Path(function._cache._cache_path).glob(f"*{function.__name__}*.nbi")), function


def test_precision_and_recall_separate_quality_from_coverage():
    rng = np.random.default_rng(0)
    real = np.concatenate([rng.normal(0, 1, (500, 4)), rng.normal(12, 1, (500, 4))])  # two modes
    same = np.concatenate([rng.normal(0, 1, (500, 4)), rng.normal(12, 1, (500, 4))])
    one_mode = rng.normal(0, 1, (1000, 4))  # good samples, half the variety
    off = rng.normal(40, 1, (1000, 4))  # neither
    scores = {name: h.precision_recall(real, fake) for name, fake in
              (("same", same), ("one mode", one_mode), ("off", off))}
    assert scores["same"]["precision"] > 0.9 and scores["same"]["recall"] > 0.9
    assert scores["one mode"]["precision"] > 0.9 and 0.4 < scores["one mode"]["recall"] < 0.6
    assert 0.4 < scores["one mode"]["coverage"] < 0.6
    assert scores["off"]["precision"] == 0 and scores["off"]["recall"] == 0
    with pytest.raises(ValueError, match="more than k=5"):
        h.precision_recall(real[:3], same)
