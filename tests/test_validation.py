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


def test_validation_search_prints_its_candidates_and_never_loads_the_test_set(monkeypatch, checkpoint_dir,
                                                                               tmp_path, capsys):
    import importlib
    from pathlib import Path

    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.syspath_prepend(str(Path(h.ROOT) / "tools"))
    validate = importlib.import_module("validate")
    real = h.load_mnist

    def training_set_only(train=True, folder=None):
        if train is not True:
            raise AssertionError("the validation search asked for the test set")
        return real(train, folder)

    patch_everywhere(monkeypatch, "load_mnist", training_set_only)
    # Below load_mnist too: the test arrays reach only the check that refuses test images.
    checking, checks, real_refuse, real_arrays = [], [], h.refuse_test_images, h.mnist_arrays

    def refuse(images, folder=None):
        checking.append(True)
        checks.append(len(images))
        try:
            return real_refuse(images, folder)
        finally:
            checking.pop()

    def arrays(*args, **kwargs):
        found = real_arrays(*args, **kwargs)
        return found if checking else {k: v for k, v in found.items() if not k.startswith("test")}

    patch_everywhere(monkeypatch, "refuse_test_images", refuse)
    patch_everywhere(monkeypatch, "mnist_arrays", arrays)
    assert h.SMOKE  # the tests' smoke mode is what selects the search's small grids
    result = validate.main(["--out", str(tmp_path / "validation.json")])
    assert result["quick"]
    printed = capsys.readouterr().out
    selection = result["transfer"]["selection"]
    assert set(selection) == {"frozen", "finetune", "whole", "scratch", "selftrain", "cluster"}
    for arm, stages in validate.QUICK["grids"].items():
        assert sum(line.startswith(f"{arm:<9} {{") for line in printed.splitlines()) == len(stages[0]), arm
        assert selection[arm]["steps"] in (10, 20)
    assert result["transfer"]["control"]["max_abs_diff"] == 0
    assert result["mixture"]["best_components"] in validate.QUICK["mixture"]
    assert result["classifier"]["epochs"] in (1, 2)
    recipe = result["recipe"]
    assert recipe["cgan_aux_weight"]["best"] in (0.0, 0.1)
    for family, stages in validate.QUICK["recipe_grids"].items():  # the start and each stage's one change
        assert len(recipe[family]["tried"]) == 1 + sum(len(stage) for stage in stages), family
        assert set(recipe[family]["chosen"]) == set(validate.RECIPE_FIELDS)
    assert sum(line.startswith("recipe    k8") for line in printed.splitlines()) == 3  # start, change, choice
    assert set(result["length"]) == {"k8", "gmm_prior", "cgan", "precision"}
    assert all(set(result["length"][f]["fd"]) in ({20, 40}, {20, 40, 80}) for f in ("k8", "gmm_prior", "cgan"))
    gan = result["gan"]
    assert gan["k8"]["steps"] in (20, 40)
    assert set(gan["priors"]["samplers"]) == {"k8_matched", "gmm_prior", f"gmm{result['mixture']['best_components']}"}
    assert all(len(runs) == 2 for runs in gan["priors"]["samplers"].values())
    assert gan["priors"]["fd_sample_noise_std"] > 0
    written = json.loads((tmp_path / "validation.json").read_text())
    assert written["transfer"]["selection"] == json.loads(json.dumps(selection))
    assert all(path.exists() for path in validate.plot_search(written))
    assert checks == [h.RECIPE.ae_val_size]  # the validation images were checked against the test set, once


def test_the_search_rules_pick_the_fewest_steps_near_the_best(monkeypatch):
    import importlib
    from pathlib import Path

    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.syspath_prepend(str(Path(h.ROOT) / "tools"))
    validate = importlib.import_module("validate")
    assert validate.plateau_steps({50: 0.80, 100: 0.897, 200: 0.90, 400: 0.899}) == 100  # within 0.5 point
    assert validate.plateau_steps({50: 0.80, 100: 0.89, 200: 0.90}) == 200
    # FD: within 10% of the lowest; a curve still falling picks its longest run
    assert validate.gan_plateau({500: 5.73, 1000: 5.50, 2000: 5.14, 4000: 4.80}) == 2000
    assert validate.gan_plateau({750: 13.8, 1500: 12.1, 3000: 8.93, 6000: 7.57}) == 6000

    # The recipe search: a change is kept only if it lowers the FD by more than 10%; later stages start
    # from the changes kept, and the incumbent is not trained twice.
    fd = {(1e-3, 10.0): 8.0, (3e-3, 10.0): 7.5, (3e-4, 10.0): 6.0, (3e-4, 1.0): 5.8, (3e-4, 100.0): 9.0}
    scored = []

    class Judge:
        def score(self, config):
            scored.append((config.lr, config.r1))
            return {"fd": fd[(config.lr, config.r1)], "seconds": 0.0}

    base = h.GANConfig(lr=1e-3, r1=10.0)
    found = validate.coordinate_search("k8", base, [[dict(lr=lr) for lr in (3e-4, 1e-3, 3e-3)],
                                                    [dict(r1=r1) for r1 in (1.0, 10.0, 100.0)]], Judge())
    assert scored == [(1e-3, 10.0), (3e-4, 10.0), (3e-3, 10.0), (3e-4, 1.0), (3e-4, 100.0)]
    assert found["changes"] == {"lr": 3e-4}  # 7.5 is not 10% below 8.0; 5.8 is not 10% below 6.0
    assert found["chosen"]["lr"] == 3e-4 and found["chosen"]["r1"] == 10.0

    # The length check: doubled while the longest run is more than 10% better, at most MAX_DOUBLINGS
    # times, from the FD the recipe search measured at its length; earlier FDs of the same key reused.
    curves = {"k8": {200: 8.0, 400: 6.0, 800: 5.0}, "gmm_prior": {100: 5.0, 200: 4.8},
              "cgan": {50: 12.0, 100: 10.0, 200: 9.5}}
    trained = []

    class LengthJudge:
        ae_config, epochs, samples = h.ae_config(), 3, 5000

        def score(self, config):
            family = "gmm_prior" if config.prior == "gmm" else "cgan" if config.n_classes else "k8"
            trained.append((family, config.steps))
            return {"fd": curves[family][config.steps]}

    recipe = {"steps": {"k8": 100, "gmm_prior": 100, "cgan": 50},
              "k8": {"tried": [{"setting": {}, "fd": 9.0}], "changes": {},
                     "chosen": dict(lr=3e-4, r1=10.0, hidden=256, ema=0.0, d_warmup=0)},
              "gmm_prior": {"tried": [{"setting": {}, "fd": 5.0}], "changes": {},
                            "chosen": dict(lr=3e-4, r1=10.0, hidden=256, ema=0.999, d_warmup=300)},
              "cgan_aux_weight": {"scores": {"0.1": {"fd": 12.0}}, "best": 0.1}}
    curves["k8"][100] = 9.0
    lengths = validate.check_lengths(LengthJudge(), recipe)
    assert {f: r["steps"] for f, r in lengths.items()} == {"k8": 400, "gmm_prior": 100, "cgan": 100}
    assert lengths["k8"]["fd"] == {100: 9.0, 200: 8.0, 400: 6.0}  # two doublings, the cap, though still falling
    assert trained == [("gmm_prior", 200), ("k8", 200), ("k8", 400), ("cgan", 100), ("cgan", 200)]
    trained.clear()
    assert validate.check_lengths(LengthJudge(), recipe, earlier=lengths) == lengths and trained == []


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


def test_the_report_recipe_is_what_the_validation_search_chose():
    """Every setting the report chose rather than fixed is the committed search's choice (figures/validation.json)."""
    full, search = h.FULL, h.read_validation()
    assert not search["quick"]
    selection = search["transfer"]["selection"]
    for arm in ("frozen", "finetune", "whole", "scratch"):
        assert full.transfer_settings[arm] == selection[arm], arm
    assert selection["selftrain"]["kept"] and full.transfer_settings["selftrain"] == full.transfer_settings["frozen"]
    assert full.cluster_setting == selection["cluster"]
    assert full.gmm_components == search["mixture"]["best_components"]
    # The GANs' recipe from the recipe search, and their lengths from the length check that followed it.
    recipe = search["recipe"]
    k8 = recipe["k8"]["chosen"]
    assert {key: k8[key] for key in full.gan_recipe} == full.gan_recipe
    for family, name in {"k8": "gan_steps", "cgan": "cgan_steps", "gmm_prior": "mixture_steps"}.items():
        assert getattr(full, name) == search["length"][family]["steps"], family
    assert full.cgan_aux_weight == recipe["cgan_aux_weight"]["best"]
    prior = recipe["gmm_prior"]["chosen"]
    assert (prior["lr"], prior["ema"], prior["d_warmup"]) == (full.mixture_lr, full.mixture_ema, full.mixture_warmup)
    assert full.classifier_epochs == search["classifier"]["epochs"]
    assert full.classifier_train_size == full.ae_train_size  # the validation images stay unseen


def test_the_gan_search_parts_follow_each_other():
    """The recipe search ran at the length curves' lengths, and the length check started from the FD the
    recipe search measured for its chosen recipe."""
    search = h.read_validation()
    for family in ("k8", "cgan", "gmm_prior"):
        assert search["recipe"]["steps"][family] == search["gan"][family]["steps"], family
        checked = sorted(int(s) for s in search["length"][family]["fd"])
        assert checked == [search["gan"][family]["steps"] * 2 ** i for i in range(len(checked))] and len(checked) > 1
    for family in ("k8", "gmm_prior"):
        chosen = next(r for r in search["recipe"][family]["tried"] if r["setting"] == search["recipe"][family]["changes"])
        assert search["length"][family]["fd"][str(search["recipe"]["steps"][family])] == chosen["fd"], family
    weight = str(search["recipe"]["cgan_aux_weight"]["best"])
    assert search["length"]["cgan"]["fd"][str(search["recipe"]["steps"]["cgan"])] == \
        search["recipe"]["cgan_aux_weight"]["scores"][weight]["fd"]
    k8, prior = search["recipe"]["k8"]["chosen"], search["recipe"]["gmm_prior"]["chosen"]
    assert {key: prior[key] for key in ("r1", "hidden")} == {key: k8[key] for key in ("r1", "hidden")}
