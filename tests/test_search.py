"""The validation search's studies: trials recorded with every field, a killed search resumed without
training a finished trial again, the length rule on known curves."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from unittest import mock

import numpy as np
import pytest
import torch
from optuna.trial import TrialState

import helpers as h
from ex3lib import search

# Tiny: 256 images in batches of 128, one epoch, a small network; one worker, so no process is started.
TINY = replace(h.RECIPE, ae_train_size=256, ae_val_size=128, ae_epochs=1)
QUICK = dict(recipe=TINY, lrs=(2e-3, 4e-3), batches=(128,), ds=(10,), epochs=1, max_doublings=1, workers=1,
             architecture=dict(channels=(4, 8, 8), hidden=(32,)))


def test_the_length_is_where_a_doubling_gains_less_than_the_noise():
    assert search.choose_length({10: 0.0100, 20: 0.0090, 40: 0.00895}, noise=0.0002) == 20
    assert search.choose_length({10: 0.0100, 20: 0.00995}, noise=0.0002) == 10
    assert search.choose_length({10: 0.0100, 20: 0.0090}, noise=0.0002) is None  # still falling: no plateau yet
    assert search.choose_length({10: 0.0100, 30: 0.0099}, noise=0.0002) is None  # not a doubling


def test_a_killed_search_resumes_without_training_a_finished_trial_again(tmp_path, checkpoint_dir, monkeypatch):
    images = h.load_mnist(train=True)[0][:TINY.ae_train_size + TINY.ae_val_size]
    real, calls = search.train_missing, []

    def killed_on_the_third(configs, imgs):
        calls.append(configs)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies while a trial trains
        return real(configs, imgs)

    monkeypatch.setattr(search, "train_missing", killed_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        search.search_autoencoder(images, folder=tmp_path, log=lambda line: None, **QUICK)
    study = search.open_study("autoencoder", tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING]

    trained = []
    monkeypatch.setattr(search, "train_missing", lambda configs, imgs: trained.append(configs) or real(configs, imgs))
    lines = []
    result = search.search_autoencoder(images, folder=tmp_path, log=lines.append, **QUICK)
    study = search.open_study("autoencoder", tmp_path)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 1 and TrialState.RUNNING not in states
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    keys = [t.user_attrs["key"] for t in complete]
    assert len(keys) == len(set(keys)), "a finished trial was recorded twice"
    assert len(trained) == len(complete) - 2  # the two finished before the kill were read back, not trained
    for t in complete:  # every stored trial holds every field the code writes
        assert set(search.TRIAL_FIELDS) <= set(t.user_attrs), t.user_attrs
        assert t.user_attrs["precision"] == h.PRECISION and t.value == t.user_attrs["curve"][-1]
        assert len(t.intermediate_values) == t.user_attrs["config"]["epochs"]
    # The stored choice is what the selection rule picks from the stored trials.
    recipe = [t for t in complete if t.user_attrs["stage"] == "recipe"]
    best = min(recipe, key=lambda t: t.value).user_attrs["config"]
    assert (result["lr"], result["batch_size"]) == (best["lr"], best["batch_size"])
    assert study.user_attrs["chosen"]["lr"] == result["lr"] and result["lengths"][10]["noise"] > 0
    assert any(line.startswith("recipe") for line in lines) and lines[-1].startswith("autoencoder: lr")
    assert json.loads((tmp_path / "autoencoder.jsonl").read_text().splitlines()[0])  # plain-text journal lines


def test_models_still_to_train_go_in_full_chunks_one_per_worker(monkeypatch, tmp_path):
    """A stage whose first config is already in the checkpoint cache (another stage's trial) records it on its own
    and trains the other two side by side, not the cached one beside one and the last alone."""
    from types import SimpleNamespace

    configs = [h.AEConfig(d=10, seed=s) for s in (0, 1, 2)]
    chunks = []
    monkeypatch.setattr(search, "checkpoint_path", lambda c: SimpleNamespace(exists=lambda: c.seed == 0))
    monkeypatch.setattr(search, "train_missing", lambda chunk, images: chunks.append([c.seed for c in chunk]))
    monkeypatch.setattr(search, "autoencoder", lambda c, images, progress: (None, {
        "val_mse_history": [0.02, 0.01 + c.seed / 1000], "train_seconds": 1.0}))
    study = search.open_study("autoencoder", tmp_path)
    out = search.run_trials(study, "noise", configs, None, log=lambda line: None, workers=2)
    assert chunks == [[0], [1, 2]] and [out[c].value for c in configs] == pytest.approx([0.01, 0.011, 0.012])


def test_the_rate_is_refined_at_the_chosen_length_across_latent_sizes(monkeypatch):
    """d = 10 prefers the short run's rate by 1%, d = 64 prefers a quarter of it by 50%: the refined rate is the
    one whose mean relative error is lowest; its spread and one doubling are measured at the length (plateau at
    d = 10 only)."""
    from types import SimpleNamespace

    lr, calls = 0.032, []
    first = {(10, lr): 0.0090, (10, lr / 2): 0.00905, (10, lr / 4): 0.00909, (10, lr / 8): 0.0095,
             (64, lr): 0.0030, (64, lr / 2): 0.0024, (64, lr / 4): 0.0020, (64, lr / 8): 0.0021}
    second = {(10, 1): 0.00912, (10, 2): 0.00906, (64, 1): 0.00205, (64, 2): 0.00195,  # seeds 1, 2 at lr / 4
              (10, 20): 0.0092, (64, 20): 0.0027,  # half the length, seed 0
              (10, 80): 0.00907, (64, 80): 0.0015}  # the doubled length, seed 0

    def fake(study, configs, stage, images, log, workers):
        calls.append(configs)
        grid = lambda c: c.seed == 0 and c.epochs == 40  # a rate of the grid, else a seed or the doubling
        return {c: SimpleNamespace(value=first[c.d, c.lr] if grid(c) else second[c.d, c.seed or c.epochs])
                for c in configs}

    monkeypatch.setattr(search, "_trained", fake)
    lengths = {10: {"epochs": 40}, 64: {"epochs": 40}}
    out = search.refine_rate(None, lambda d: h.AEConfig(d=d), lr, 128, lengths, None, log=lambda line: None)
    assert out["lr"] == lr / 4 and not out["on_edge"] and len(calls) == 2
    assert {c.epochs for c in calls[0]} == {40} and {c.lr for c in calls[1]} == {lr / 4}
    assert {(c.seed, c.epochs) for c in calls[1]} == {(1, 40), (2, 40), (0, 20), (0, 80)}
    assert out["lengths"][10]["epochs"] == 40  # 20 -> 40 gains more than the spread at 40 epochs, 40 -> 80 less
    assert out["lengths"][10]["noise"] == pytest.approx(float(np.std([0.00909, 0.00912, 0.00906], ddof=1)))
    assert out["lengths"][64]["epochs"] is None  # 0.0020 -> 0.0015 still gains more: no plateau at 40
    # At a slower rate d = 10 may still fall at twice the length: the report's d doubles again (up to max_epochs),
    # d = 64 (not extended) keeps its one doubling; where 20 epochs already plateau, the length is 20.
    second.update({(10, 80): 0.00900, (10, 160): 0.00899, (64, 160): 0.0})
    calls.clear()
    out = search.refine_rate(None, lambda d: h.AEConfig(d=d), lr, 128, lengths, None, log=lambda line: None,
                             extend=(10,))
    assert [(c.d, c.epochs) for c in calls[2]] == [(10, 160)] and len(calls) == 3
    assert out["lengths"][10]["epochs"] == 80 and out["lengths"][64]["values"].keys() == {20, 40, 80}
    second.update({(10, 20): 0.00910, (10, 80): 0.00907})
    out = search.refine_rate(None, lambda d: h.AEConfig(d=d), lr, 128, lengths, None, log=lambda line: None,
                             extend=(10,))
    assert out["lengths"][10]["epochs"] == 20
    second.update({(10, 80): 0.00800, (10, 160): 0.00700})  # still falling at the cap: no length
    out = search.refine_rate(None, lambda d: h.AEConfig(d=d), lr, 128, lengths, None, log=lambda line: None,
                             extend=(10,), max_epochs=160)
    assert out["lengths"][10]["epochs"] == 20  # 20 -> 40 gains less than the spread: the shortest plateau
    second.update({(10, 20): 0.0100})
    out = search.refine_rate(None, lambda d: h.AEConfig(d=d), lr, 128, lengths, None, log=lambda line: None,
                             extend=(10,), max_epochs=160)
    assert out["lengths"][10]["epochs"] is None and max(out["lengths"][10]["values"]) == 160
    second.update({(10, 20): 0.0092, (10, 80): 0.00907})
    # A choice on the lower edge halves the grid again: lr / 8 best, then lr / 16 worse, so lr / 8 is inside.
    first.update({(10, lr / 8): 0.0089, (64, lr / 8): 0.0019, (10, lr / 16): 0.0092, (64, lr / 16): 0.0020})
    second.update({(10, 1): 0.00890, (10, 2): 0.00892, (64, 1): 0.00191, (64, 2): 0.00189})
    calls.clear()
    out = search.refine_rate(None, lambda d: h.AEConfig(d=d), lr, 128, lengths, None, log=lambda line: None)
    assert out["lr"] == lr / 8 and out["rates"][0] == lr / 16 and not out["on_edge"]
    # d = 64 still falling at the length stage's cap: refined at d = 10's plateau length beside it
    calls.clear()
    out = search.refine_rate(None, lambda d: h.AEConfig(d=d), lr, 128, {10: {"epochs": 40}, 64: {"epochs": None}},
                             None, log=lambda line: None)
    assert out["epochs"] == 40 and {(c.d, c.epochs) for c in calls[0]} == {(10, 40), (64, 40)} and not out["at_cap"]
    # no d reached a plateau within the length stage's cap (40 here): refined at that cap all the same
    calls.clear()
    capped = {d: {"epochs": None, "values": {"10": 0.01, "20": 0.009, "40": 0.008}} for d in (10, 64)}
    out = search.refine_rate(None, lambda d: h.AEConfig(d=d), lr, 128, capped, None, log=lambda line: None)
    assert out["epochs"] == 40 and out["at_cap"] and {(c.d, c.epochs) for c in calls[0]} == {(10, 40), (64, 40)}


def test_the_studies_built_on_the_autoencoder_take_the_autoencoder_studys_choice(tmp_path):
    with pytest.raises(RuntimeError, match="has not chosen"):
        search.studied_recipe(tmp_path, TINY)
    study = search.open_study("autoencoder", tmp_path)
    lengths = {"10": {"epochs": 40}, "64": {"epochs": None}}
    study.set_user_attr("chosen", {"lr": 0.016, "batch_size": 256, "lengths": lengths})
    with pytest.raises(RuntimeError, match="has not chosen"):  # a choice made before the refine stage
        search.studied_recipe(tmp_path, TINY)
    study.set_user_attr("chosen", {"lr": 0.016, "batch_size": 256, "lengths": lengths, "refine": {"lr": 0.016}})
    with pytest.raises(RuntimeError, match="no trial of the stored autoencoder study"):  # a model it never trained
        search.studied_recipe(tmp_path, TINY)
    trained_by_the_study(study, replace(TINY, ae_lr=0.016, ae_batch_size=256, ae_epochs=40))
    recipe = search.studied_recipe(tmp_path, TINY)
    assert (recipe.ae_lr, recipe.ae_batch_size, recipe.ae_epochs) == (0.016, 256, 40)  # the length at d = 10
    assert replace(recipe, ae_lr=TINY.ae_lr, ae_batch_size=TINY.ae_batch_size, ae_epochs=TINY.ae_epochs) == TINY
    config = h.ae_config(recipe=recipe)
    assert (config.lr, config.batch_size, config.epochs) == (0.016, 256, 40)
    study.set_user_attr("chosen", {"lr": 0.016, "batch_size": 256, "lengths": {"10": {"epochs": None}}, "refine": {}})
    with pytest.raises(RuntimeError, match="has not chosen"):
        search.studied_recipe(tmp_path, TINY)
    study.set_user_attr("chosen", {"lr": 0.016, "batch_size": 256, "lengths": {"10": {"epochs": None}}, "refine": {"x": 1}})
    with pytest.raises(RuntimeError, match="no plateau at d = 10"):
        search.studied_recipe(tmp_path, TINY)


def test_a_trial_is_scored_on_validation_images_and_trains_the_reports_checkpoint(tmp_path, checkpoint_dir):
    """A trial with the report's config leaves the checkpoint the report loads: the same cache key."""
    images = h.load_mnist(train=True)[0]
    study = search.open_study("autoencoder", tmp_path)
    config = h.ae_config(4, epochs=1)
    trials = search.run_trials(study, "recipe", [config], images, log=lambda line: None, workers=1)
    trial = trials[config]
    assert trial.user_attrs["cache_key"] == h.cache_key(config) and h.checkpoint_path(config).exists()
    _, info = h.autoencoder(config, required=True)
    assert info["cached"] and trial.value == pytest.approx(info["val_mse_history"][-1])
    assert config.train_size + config.val_size <= h.RECIPE.ae_train_size + h.RECIPE.ae_val_size


def test_a_gan_studys_rate_is_refined_at_its_length(monkeypatch, tmp_path):
    """The best rate is 3e-4 below 24,000 steps and 9e-4 from there on; FD falls until 24,000 steps: the grid
    picks 3e-4 at 6,000 steps, the length rule 24,000, and the refine stage moves the rate to 9e-4 (trying 2.7e-3
    past that edge) and checks one doubling there."""
    import math
    from types import SimpleNamespace

    def fd(c):  # the narrower network, at its equal-compute 24,000 steps, still loses
        best = 3e-4 if c.steps < 24000 else 9e-4
        return (5 + 4 * math.log10(c.lr / best) ** 2 - 2 * min(c.steps, 24000) / 24000 + 0.01 * c.seed
                + 1.6 * (c.hidden == 128))

    stages, trained = [], []
    monkeypatch.setattr(search, "run_gan_trials", lambda study, stage, configs, judge, log: stages.append(stage) or trained.extend(configs) or {
        c: SimpleNamespace(value=fd(c) + (0.05 if c.precision == "float32" else 0), user_attrs={"config": search._gan_params(c), "fd_draw_std": 0.1})
        for c in configs})
    monkeypatch.setattr(search.runtime, "PRECISION", "bfloat16")  # a run in bfloat16: the precision is checked
    judge = SimpleNamespace(ae_config=h.ae_config(), fit_codes=torch.zeros(100, 10), val_accuracy=0.9)
    out = search.search_gan(judge, "k8", grid=dict(lr=(1e-4, 3e-4, 1e-3), batch_size=(256,)), steps=6000,
                            folder=tmp_path, log=lambda line: None)
    assert out["length"]["noise"] == pytest.approx(0.01)  # seeds 0, 1, 2 of the grid's choice
    # 9e-4, the refine rates' top edge, tried 2.7e-3 past it (worse): 9e-4 is inside the rates tried
    assert out["refine"]["rates"] == pytest.approx([1e-4, 3e-4, 9e-4, 2.7e-3]) and out["lr"] == pytest.approx(9e-4)
    assert not out["refine"]["on_edge"] and not out["lr_on_edge"]
    assert out["length"]["steps"] == 24000 and set(out["length"]["values"]) == {24000, 48000}
    assert stages == (["recipe"] + ["noise"] * 2 + ["coordinate"] * 4 + ["length"] * 3 + ["spread"] * 2
                      + ["refine"] * 5 + ["precision"])
    assert out["length"]["spread_at"] == 24000 and out["length"]["spread_values"] == pytest.approx(
        [fd(replace(trained[0], steps=24000, seed=s, lr=3e-4)) for s in (0, 1, 2)])
    assert out["shared"] == {"hidden": 256, "r1": 10.0}  # no width or R1 weight beat the grid's choice
    # the widths at the grid choice's multiply-adds: a quarter of the weights, four times the steps
    assert out["coordinate"]["hidden"]["steps"] == {"256": 6000, "128": 24000, "512": 1500}
    assert out["coordinate"]["r1"]["steps"] == {"10.0": 6000, "1.0": 6000, "100.0": 6000}
    assert {c.precision for c in trained[:-1]} == {"bfloat16"} and out["precision"] == "bfloat16"
    check = trained[-1]  # the final setting, at its length and seed 0, in float32
    assert (check.precision, check.steps, check.seed, check.lr) == ("float32", 24000, 0, pytest.approx(9e-4))
    check_ = out["precision_check"]
    assert {k: check_[k] for k in ("float32", "bfloat16", "noise")} == pytest.approx(
        {"float32": fd(check) + 0.05, "bfloat16": fd(check), "noise": 0.01})
    assert check_["within_noise"] is False  # 0.05 apart against a spread of 0.01
    # a wider generator that beats the grid's choice by more than the spread is kept, and the length and refine
    # stages run on it; an R1 weight ahead by less than the spread is not
    base_fd = fd
    fd = lambda c: base_fd(c) - (0.5 if c.hidden == 512 else 0) - (0.005 if c.r1 == 100.0 else 0)  # noqa: F841
    trained.clear()
    out = search.search_gan(judge, "k8", grid=dict(lr=(1e-4, 3e-4, 1e-3), batch_size=(256,)), steps=6000,
                            folder=tmp_path / "wide", log=lambda line: None)
    assert out["shared"] == {"hidden": 512, "r1": 10.0} and out["coordinate"]["hidden"]["chosen"] == 512
    wide = trained.index(replace(trained[0], lr=3e-4, hidden=512, steps=1500))  # its equal-compute trial
    # 512, an edge, tried 1024 past it (no better); the R1 weight, the length, the spread ran on 512
    assert trained[wide + 1] == replace(trained[wide], hidden=1024, steps=375)
    assert {c.hidden for c in trained[wide + 2:]} == {512}
    assert out["length"]["values"][1500] == pytest.approx(fd(trained[wide]))  # its doublings start from its steps


def test_a_width_or_r1_weight_moved_onto_an_edge_tries_the_next_value_past_it(monkeypatch, tmp_path):
    """FD falls with every halving of the width (at equal multiply-adds) and is flat in the R1 weight but for
    R1 100: the width moves to 128, an edge, so 64 and then 32 are tried (twice at most), and 32 is kept; R1 100
    leads by less than the spread, so the R1 weight stays (no extension)."""
    import math
    from types import SimpleNamespace

    fd = lambda c: 5 + math.log2(c.hidden / 256) + 0.01 * c.seed - 0.005 * (c.r1 == 100.0)
    trained = []
    monkeypatch.setattr(search, "run_gan_trials", lambda study, stage, configs, judge, log: trained.extend(configs) or {
        c: SimpleNamespace(value=fd(c), user_attrs={"config": search._gan_params(c), "fd_draw_std": 0.1})
        for c in configs})
    judge = SimpleNamespace(ae_config=h.ae_config(), fit_codes=torch.zeros(100, 10), val_accuracy=0.9)
    out = search.search_gan(judge, "k8", grid=dict(lr=(1e-4, 3e-4, 1e-3)), steps=6000, max_doublings=1,
                            folder=tmp_path, log=lambda line: None)
    widths = out["coordinate"]["hidden"]
    assert widths["steps"] == {"256": 6000, "128": 24000, "512": 1500, "64": 96000, "32": 384000}
    assert widths["chosen"] == 32 and out["shared"] == {"hidden": 32, "r1": 10.0}
    assert sorted(out["coordinate"]["r1"]["values"]) == ["1.0", "10.0", "100.0"]  # no move, no extension
    assert {c.hidden for c in trained if c.r1 == 100.0} == {32}  # the R1 weight tried on the moved width
    # a recipe that already holds the study's choice trains the same trials (the grid starts at GAN_START)
    first, trained[:] = list(trained), []
    moved = replace(h.RECIPE, gan_recipe={**h.RECIPE.gan_recipe, "hidden": 32, "r1": 1.0})
    search.search_gan(judge, "k8", recipe=moved, grid=dict(lr=(1e-4, 3e-4, 1e-3)), steps=6000, max_doublings=1,
                      folder=tmp_path / "rerun", log=lambda line: None)
    assert trained == first and (first[0].hidden, first[0].r1) == (256, 10.0)


def test_a_moved_gan_rate_is_doubled_until_its_own_plateau(monkeypatch, tmp_path):
    """The grid picks 1e-3 over 3e-4; at 3,000 steps 3.3e-4 leads 1e-3 by more than the seed spread, the FD grows
    with length at 1e-3 and falls until 12,000 steps at 3.3e-4: the length rule stops at 3,000, the refine stage
    moves the rate to 3.3e-4 (1.1e-4, past that edge, is worse) and doubles it twice, to the plateau at 12,000
    steps (a single doubling would leave the length undecided)."""
    import math
    from types import SimpleNamespace

    def fd(c):
        if c.lr > 5e-4:
            return 7.6 + 0.2 * math.log2(c.steps / 3000) + 2 * math.log10(c.lr / 1e-3) ** 2 + 0.01 * c.seed
        return 7.6 - lead + 20 * abs(math.log10(c.lr / (1e-3 / 3))) - 0.5 * math.log2(min(c.steps, 12000) / 3000) + 0.01 * c.seed

    lead = 0.05

    stages = []
    monkeypatch.setattr(search, "run_gan_trials", lambda study, stage, configs, judge, log: stages.append(stage) or {
        c: SimpleNamespace(value=fd(c), user_attrs={"config": search._gan_params(c), "fd_draw_std": 0.1})
        for c in configs})
    judge = SimpleNamespace(ae_config=h.ae_config(), fit_codes=torch.zeros(100, 10), val_accuracy=0.9)
    out = search.search_gan(judge, "cgan", grid=dict(lr=(1e-4, 3e-4, 1e-3, 3e-3), aux_weight=(0.1,)),
                            steps=3000,
                            folder=tmp_path, log=lambda line: None)
    assert out["lr"] == pytest.approx(1e-3 / 3) and out["length"]["steps"] == 12000
    assert set(out["length"]["values"]) == {3000, 6000, 12000, 24000}
    assert stages.count("refine") == 3 + 1 + 3  # the rates, 1e-3 / 9 past the moved rate's edge, the doublings
    assert out["refine"]["rates"] == pytest.approx([1e-3 / 9, 1e-3 / 3, 1e-3, 3e-3]) and not out["lr_on_edge"]
    lead = 0.01  # a lead no larger than the seed spread (0.01): the grid's rate and its length stay
    out = search.search_gan(judge, "cgan", grid=dict(lr=(1e-4, 3e-4, 1e-3, 3e-3), aux_weight=(0.1,)), steps=3000,
                            folder=tmp_path / "level", log=lambda line: None)
    assert out["lr"] == pytest.approx(1e-3) and out["length"]["steps"] == 3000


def test_a_gan_familys_grid_runs_at_the_multiply_adds_of_its_start_width():
    """GAN_GRIDS' steps are set for width 256 (GAN_START): at 256 they stand; a narrower base trains as many
    multiply-adds (to a power of two, like equal_compute), and the k8 grid, which starts at 256, never moves."""
    from dataclasses import replace

    base = search.gan_base("cgan", h.ae_config(), 55000, h.RECIPE)
    assert search.grid_steps(replace(base, hidden=256), 3000) == 3000
    narrow = replace(base, hidden=64)
    ratio = search.step_weights(replace(base, hidden=256)) / search.step_weights(narrow)
    assert 8 < ratio < 32 and search.grid_steps(narrow, 3000) == 3000 * 16
    assert search.grid_steps(narrow, 3000) == search.equal_compute(replace(base, hidden=256, steps=3000), narrow).steps


def test_a_gan_never_loads_in_place_of_one_trained_on_other_codes(checkpoint_dir):
    codes = torch.randn(300, 10)
    config = h.GANConfig(steps=5, hidden=16, train_codes=300)
    h.latent_gan(config, codes)
    with pytest.raises(ValueError, match="train_codes=300"):
        h.latent_gan(config, codes[:200])
    assert h.checkpoint_path(config) != h.checkpoint_path(replace(config, train_codes=200))


def trained_by_the_study(study, recipe) -> None:
    """A complete trial of the report's autoencoder under `recipe` in the autoencoder study (studied_recipe asks)."""
    import optuna

    study.add_trial(optuna.trial.create_trial(value=0.01, user_attrs={"cache_key": h.cache_key(h.ae_config(recipe=recipe))}))


def test_picked_recipe_takes_every_studys_choice_and_refuses_an_unfinished_one(tmp_path):
    ae = search.open_study("autoencoder", tmp_path)
    ae.set_user_attr("chosen", {"lr": 2e-3, "batch_size": 256, "refine": {"lr": 2e-3},
                                "lengths": {"10": {"epochs": 20}, "64": {"epochs": None}}})
    trained_by_the_study(ae, replace(h.FULL, ae_lr=2e-3, ae_batch_size=256, ae_epochs=20))
    with pytest.raises(RuntimeError, match="classifier study"):
        search.picked_recipe(tmp_path, h.FULL)
    search.open_study("classifier", tmp_path).set_user_attr("chosen", {"epochs": 8})
    shared = {"hidden": 512, "r1": 1.0}
    gans = {"k8": {"lr": 1e-3, "batch_size": 256, "length": {"steps": 12000}, "shared": shared},
            "cgan": {"lr": 1e-4, "aux_weight": 0.3, "length": {"steps": None}, "shared": shared},
            "gmm_prior": {"lr": 3e-3, "ema": 0.9, "length": {"steps": None}, "shared": shared}}  # not the report's
    for family, chosen in gans.items():
        search.open_study(f"gan_{family}", tmp_path).set_user_attr("chosen", chosen)
    with pytest.raises(RuntimeError, match="cgan"):  # no length yet, and no transfer study
        search.picked_recipe(tmp_path, h.FULL)
    search.open_study("gan_cgan", tmp_path).set_user_attr("chosen", {**gans["cgan"], "length": {"steps": 9000}})
    transfer = {"frozen": dict(lr=1e-2, hidden=64, weight_decay=0.0, steps=800),
                "finetune": dict(encoder_lr=3e-5, batchnorm="train", steps=50),
                "whole": dict(lr=3e-4, batchnorm="train", max_shift=2, steps=200),
                "scratch": dict(lr=3e-3, max_shift=2, steps=1600)}
    for pick in transfer.values():  # each arm's grid: the settings it searched (their values do not matter here)
        pick["grid"] = {k: [v] for k, v in pick.items() if k != "steps"}
    search.open_study("transfer", tmp_path, direction="maximize").set_user_attr("chosen", transfer)
    with pytest.raises(RuntimeError, match="unlabelled.*mixture"):
        search.picked_recipe(tmp_path, h.FULL)
    search.open_study("unlabelled", tmp_path, direction="maximize").set_user_attr("chosen", {
        "selftrain": {"pseudo_steps": 900, "pseudo_fractions": [0.5]},
        "cluster": {"dims": 10, "neighbors": 50, "components": 20}})
    search.open_study("mixture", tmp_path, direction="maximize").set_user_attr("chosen", {"components": 50})
    r = search.picked_recipe(tmp_path, h.FULL)
    assert (r.selftrain_steps, r.selftrain_fractions, r.gmm_components) == (900, (0.5,), 50)
    assert r.cluster_setting == {"dims": 10, "neighbors": 50, "components": 20}
    assert (r.ae_lr, r.ae_batch_size, r.ae_epochs, r.classifier_epochs) == (2e-3, 256, 20, 8)
    assert (r.gan_recipe["lr"], r.gan_steps, r.gan_recipe["r1"], r.gan_recipe["hidden"]) == (1e-3, 12000, 1.0, 512)
    assert h.gan_config(8, h.ae_config(recipe=r), recipe=r).hidden == 512
    assert (r.cgan_lr, r.cgan_aux_weight, r.cgan_steps) == (1e-4, 0.3, 9000)
    assert (r.mixture_lr, r.mixture_ema, r.mixture_steps) == (h.FULL.mixture_lr, h.FULL.mixture_ema, h.FULL.mixture_steps)
    head = dict(lr=1e-2, hidden=64, weight_decay=0.0)
    assert r.transfer_settings == {"frozen": {**head, "steps": 800}, "selftrain": {**head, "steps": 800},
                                   "finetune": {**head, "encoder_lr": 3e-5, "batchnorm": "train", "steps": 50},
                                   "whole": {**head, "lr": 3e-4, "batchnorm": "train", "max_shift": 2, "steps": 200},
                                   "scratch": {**head, "lr": 3e-3, "max_shift": 2, "steps": 1600}}
    assert (h.arm_config("whole", r).lr, h.arm_config("whole", r).max_shift) == (3e-4, 2) and h.gan_config(8, h.ae_config(recipe=r), True, recipe=r).lr == 1e-4
    from test_structure import load_tool

    differ = load_tool("search").print_picks(tmp_path)  # `tools/search.py --picks`: what settings.FULL lacks
    assert differ["ae_lr"] == (4e-3, 2e-3) and differ["ae_batch_size"] == (128, 256)  # settings.FULL, the studies here
    assert "report_d" not in differ
    search.open_study("gan_k8", tmp_path).set_user_attr("chosen", {**gans["k8"], "batch_size": 1024})
    with pytest.raises(RuntimeError, match="batch 1024"):
        search.picked_recipe(tmp_path, h.FULL)
    search.open_study("gan_k8", tmp_path).set_user_attr("chosen", {**gans["k8"], "shared": {"hidden": 256, "r1": 1.0}})
    with pytest.raises(RuntimeError, match="another width or R1 weight"):  # the cgan study ran on another
        search.picked_recipe(tmp_path, h.FULL)


def test_the_other_gan_studies_run_on_the_k8_studys_width_and_r1_weight(tmp_path):
    with pytest.raises(RuntimeError, match="gan_k8 study has not chosen"):
        search.shared_gan_recipe(h.FULL, tmp_path)
    search.open_study("gan_k8", tmp_path).set_user_attr("chosen", {"shared": {"hidden": 128, "r1": 100.0}})
    r = search.shared_gan_recipe(h.FULL, tmp_path)
    assert r.gan_recipe == {**h.FULL.gan_recipe, "hidden": 128, "r1": 100.0}
    config = search.gan_base("cgan", h.ae_config(), 100, r)
    assert (config.hidden, config.r1, config.n_classes) == (128, 100.0, 10)


def test_opening_a_stored_study_again_writes_nothing_to_its_journal(tmp_path):
    study = search.open_study("probe", tmp_path)
    study.set_user_attr("chosen", {"lr": 1e-3})
    journal = (tmp_path / "probe.jsonl").read_text()
    again = search.open_study("probe", tmp_path)
    assert again.user_attrs["chosen"] == {"lr": 1e-3} and (tmp_path / "probe.jsonl").read_text() == journal


def test_a_study_keeps_the_precision_it_first_trained_in(tmp_path, monkeypatch):
    """A search resumed on a machine of another precision stops with the reason, before it trains anything."""
    from ex3lib import runtime, studies

    monkeypatch.setattr(runtime, "PRECISION", "bfloat16")
    study = search.open_study_to_train("probe", tmp_path)
    assert search.study_precision(study) == "bfloat16"
    assert search.study_precision(search.open_study_to_train("probe", tmp_path)) == "bfloat16"  # same machine: resumes
    monkeypatch.setattr(runtime, "PRECISION", "float32")
    with pytest.raises(search.PrecisionMismatch, match="trains in bfloat16; this machine trains in float32"):
        search.open_study_to_train("probe", tmp_path)
    assert search.study_precision(search.open_study("probe", tmp_path)) == "bfloat16"  # reading it still works
    monkeypatch.setattr(runtime, "PRECISION", "bfloat16")
    monkeypatch.setattr(runtime, "DEVICE", torch.device("cuda"))  # the same precision on another device type
    with pytest.raises(search.PrecisionMismatch, match="trains on cpu; this machine trains on cuda"):
        search.open_study_to_train("probe", tmp_path)
    monkeypatch.setattr(runtime, "DEVICE", torch.device("cpu"))
    monkeypatch.setattr(runtime, "PRECISION", "float32")
    # a journal written before the study recorded its precision: its trials' precision binds it
    old = search.open_study("old", tmp_path)
    trial = old.ask()
    trial.set_user_attr("precision", "bfloat16")
    old.tell(trial, 1.0)
    with pytest.raises(studies.PrecisionMismatch):
        search.open_study_to_train("old", tmp_path)
    # make search stops before it trains anything, naming the study
    with pytest.raises(SystemExit, match="probe.jsonl trains in bfloat16"):
        search_tool().refuse_mixed_precision(tmp_path, ["absent", "probe"])
    monkeypatch.setattr(runtime, "PRECISION", "bfloat16")
    search_tool().refuse_mixed_precision(tmp_path, ["absent", "probe"])
    assert not (tmp_path / "absent.jsonl").exists()  # checking a family with no journal creates none


def test_a_diverged_trial_is_recorded_as_the_worst_value_and_read_back(tmp_path):
    """Optuna fails a trial told nan, so a resumed search would train it again and jam: it is complete, worst."""
    study = search.open_study("probe", tmp_path)
    for value in (0.5, float("nan"), 0.4):
        trial = study.ask()
        trial.set_user_attr("key", f"k{value}")
        search.tell(study, trial, value)
    again = search.open_study("probe", tmp_path)
    assert [t.state for t in again.trials] == [TrialState.COMPLETE] * 3
    assert again.trials[1].value == float("inf") and again.trials[1].user_attrs["diverged"]
    assert search.best_of(list(search.finished_trials(again).values())).value == 0.4
    up = search.open_study("up", tmp_path, direction="maximize")
    assert search.tell(up, up.ask(), float("nan")) == float("-inf")


def test_a_trials_key_holds_the_code_it_ran(monkeypatch):
    """A changed training loop, scorer or fit changes the key, so a stored trial of other code is not read back;
    the report's recipe values are not code (changing a default leaves the keys alone)."""
    from ex3lib import cache, metrics, transfer

    before = {"transfer": cache.code_hash(*search.TRANSFER_CODE), "judge": cache.code_hash(*search.JUDGE_CODE)}

    def fit_classifier(*args, **kwargs):  # another head training, reached through train_few_label
        return None

    monkeypatch.setattr(transfer, "fit_classifier", fit_classifier)
    monkeypatch.setattr(metrics, "frechet_distance", lambda a, b: 0.0)
    assert cache.code_hash(*search.TRANSFER_CODE) != before["transfer"]
    assert cache.code_hash(*search.JUDGE_CODE) != before["judge"]
    assert "Recipe" not in cache.objects_used("ex3lib.search", ("Judge",))


def search_tool():
    """tools/search.py as a module (the command-line tool, not ex3lib.search)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("search_tool", h.ROOT / "tools" / "search.py")
    tool = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ):  # its precision setting stays out of this process's later subprocesses
        spec.loader.exec_module(tool)
    return tool


def test_the_search_trains_in_float32_whatever_the_machines_fast_precision(tmp_path):
    """tools/search.py sets EX3_PRECISION=float32 before the library reads it (unless the caller set it), so a
    machine with bfloat16 units resumes the stored float32 studies instead of stopping at their precision."""
    with mock.patch.dict(os.environ):
        os.environ.pop("EX3_PRECISION", None)
        tool = search_tool()
        assert tool.SEARCH_PRECISION == "float32"
    code = ("import importlib.util, os; "
            "spec = importlib.util.spec_from_file_location('t', 'tools/search.py'); "
            "tool = importlib.util.module_from_spec(spec); spec.loader.exec_module(tool); "
            "print(os.environ['EX3_PRECISION'], tool.h.PRECISION)")
    # in a process of its own, where the library is imported after it: an empty value (which means the machine's
    # precision to the library) still gives float32
    env = {**os.environ, "EX3_PRECISION": ""}
    out = subprocess.run([sys.executable, "-c", code], cwd=h.ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["float32", "float32"]


def test_a_smoke_search_refuses_the_stored_studies_folder(monkeypatch):
    tool = search_tool()
    monkeypatch.setattr(tool.h, "SMOKE", True)
    with pytest.raises(SystemExit, match="--folder"):
        tool.main(["--family", "mixture"])


def test_search_all_runs_the_autoencoder_study_first_then_two_lanes_side_by_side(monkeypatch, tmp_path):
    """`tools/search.py --family all`: the autoencoder study, the report's autoencoder once, then both lanes at
    once (each lane's first study waits for the other's to start), in lane order; a failed study stops its lane."""
    import threading

    tool = search_tool()
    events, both_started = [], threading.Barrier(2, timeout=10)
    monkeypatch.setattr(tool, "main", lambda argv: events.append(("main", argv[1])))
    monkeypatch.setattr(tool.search, "studied_recipe", lambda folder: TINY)
    monkeypatch.setattr(tool.h, "autoencoder", lambda config, images: events.append(("autoencoder", config.epochs)))

    def run_family(family, folder):
        if family in (lane[0] for lane in tool.LANES):
            both_started.wait()  # raises BrokenBarrierError if the lanes ran one after the other
        events.append(("study", family))
        if family == "gan_cgan":
            raise RuntimeError("a study's process could not be read")
        return 1 if family == "transfer" else 0

    lines = []
    status = tool.run_all(tmp_path, run_family=run_family, log=lines.append)
    assert events[:2] == [("main", "autoencoder"), ("autoencoder", TINY.ae_epochs)]
    studies = [f for kind, f in events if kind == "study"]
    assert [f for f in studies if f.startswith("gan_")] == ["gan_k8", "gan_cgan"]  # the error stopped its lane
    assert status["gan_cgan"] == -1 and any("could not be read" in line for line in lines)
    assert "unlabelled" not in studies and status["transfer"] == 1  # unlabelled needs transfer's choice
    assert status["gan_k8"] == 0 and status["autoencoder"] == 0 and "gan_gmm_prior" not in status
    assert studies.index("classifier") < studies.index("gan_k8")  # the GANs' judge is chosen before them


def test_the_classifier_study_doubles_the_epochs_until_a_doubling_gains_less_than_the_seed_spread(tmp_path, checkpoint_dir):
    lines = []
    result = search.search_classifier(tmp_path, log=lines.append, max_epochs=4)
    study = search.open_study("classifier", tmp_path)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert all(set(search.TRIAL_FIELDS) <= set(t.user_attrs) and 0 <= t.value <= 1 for t in complete)
    by = {(t.user_attrs["config"]["epochs"], t.user_attrs["config"]["seed"]): t.value for t in complete}
    assert result["noise"] == pytest.approx(np.std([by[1, s] for s in (0, 1, 2)], ddof=1))
    values = {int(e): v for e, v in result["values"].items()}
    assert values == {e: by[e, 0] for e in values} and sorted(values) == [1, 2, 4][:len(values)]
    at = result["spread_at"]
    assert at == search.choose_length(values, result["noise"]) or (at is None and max(values) == 4)
    if at is not None:  # the spread again where the runs converged, and the rule again with it
        assert result["spread"] == pytest.approx(np.std([by[at, s] for s in (0, 1, 2)], ddof=1))
    assert result["epochs"] == search.choose_length(values, result["spread"])
    n_trials = len(study.trials)
    again = search.search_classifier(tmp_path, log=lines.append, max_epochs=4)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in result.items() if k != "seconds"}
    assert len(search.open_study("classifier", tmp_path).trials) == n_trials  # every trial read back
    study.set_user_attr("chosen", {**result, "epochs": 2})
    recipe = search.classifier_recipe(h.RECIPE, tmp_path)
    assert recipe.classifier_epochs == 2 and search.Judge(recipe, samples=100, draws=2).signature["classifier"] == \
        h.cache_key(h.eval_classifier_config(recipe))
    study.set_user_attr("chosen", {**result, "epochs": None})
    with pytest.raises(RuntimeError, match="classifier study"):
        search.classifier_recipe(h.RECIPE, tmp_path)


def test_a_study_in_its_own_process_reports_its_exit_status_and_prefixes_its_lines(tmp_path, capsys):
    tool = search_tool()
    assert tool.run_in_process("gan_k8", tmp_path) != 0  # no autoencoder study in tmp_path: it stops
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("[gan_k8] ") for line in lines)
    assert any("autoencoder study has not chosen yet" in line for line in lines)


def test_the_recipe_tables_words_follow_each_stored_choice(tmp_path):
    from ex3lib.chosen import how_chosen

    ae = {"lr": 2e-3, "recipe_lr": 8e-3, "batch_size": 128, "lr_grid": [1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2],
          "batch_grid": [128, 256], "refine": {"epochs": 40, "rates": [1e-3, 2e-3, 4e-3, 8e-3], "lr": 2e-3},
          "lengths": {"10": {"epochs": 40}, "64": {"epochs": None}}}
    with pytest.raises(RuntimeError, match="without a choice"):
        how_chosen(tmp_path)
    study = search.open_study("autoencoder", tmp_path)
    trial = study.ask()
    trial.set_user_attr("stage", "recipe")
    trial.set_user_attr("config", {"d": 10, "epochs": 10, "lr": 8e-3, "batch_size": 128})
    study.tell(trial, 0.01)
    study.set_user_attr("chosen", ae)
    gan = lambda grid, refine, steps: {"grid": grid, "steps": 6000, "lr": refine["lr"] if refine else grid["lr"][1],
                                       **{k: v[0] for k, v in grid.items() if k != "lr"}, "refine": refine,
                                       "length": {"noise": 0.123, "steps": steps}}
    chosen = {"k8": {**gan({"lr": [1e-4, 3e-4, 1e-3], "batch_size": [256, 1024]},
                           {"rates": [1e-4, 3e-4, 9e-4], "lr": 9e-4, "steps": 12000}, 24000),  # moved: its own length
                     "precision_check": {"float32": 3.61, "bfloat16": 3.2, "noise": 0.2, "within_noise": False},
                     "coordinate": {"hidden": {"values": {"256": 3.5, "128": 3.9, "512": 3.4}, "chosen": 256},
                                    "r1": {"values": {"10.0": 3.5, "1.0": 3.6, "100.0": 3.7}, "chosen": 10.0}}},
              "gmm_prior": gan({"lr": [1e-4, 3e-4, 1e-3], "ema": [0.99, 0.999]}, None, None),
              "cgan": gan({"aux_weight": [0.0, 0.1], "lr": [1e-4, 3e-4, 1e-3]},
                          {"rates": [1e-4, 3e-4, 9e-4], "lr": 3e-4, "steps": 6000}, 6000)}
    for family, c in chosen.items():
        search.open_study(f"gan_{family}", tmp_path).set_user_attr("chosen", c)
    search.open_study("transfer", tmp_path, direction="maximize").set_user_attr("chosen", {"frozen": {
        "lr": 3e-3, "hidden": 512, "weight_decay": 0.0, "steps": 400, "still_rising": False,
        "grid": {"lr": [1e-3, 3e-3, 1e-2], "hidden": [512], "weight_decay": [0.0, 1e-4]}}})
    search.open_study("unlabelled", tmp_path, direction="maximize").set_user_attr("chosen", {
        "selftrain": {"pseudo_steps": 300, "pseudo_fractions": [0.1, 0.3], "kept": True,
                      "grid": {"pseudo_steps": [100, 300, 900], "pseudo_fractions": [[0.5], [0.1, 0.3]]}},
        "cluster": {"dims": 2, "neighbors": 15, "components": 10, "grid": {"dims": [2, 10], "neighbors": [15, 50],
                                                                          "components": [10, 20, 40]}}})
    search.open_study("mixture", tmp_path, direction="maximize").set_user_attr("chosen", {
        "components": 200, "grid": [10, 20, 50, 100, 200], "on_edge": True})
    with pytest.raises(RuntimeError, match="classifier"):
        how_chosen(tmp_path)
    search.open_study("classifier", tmp_path).set_user_attr("chosen", {"epochs": 4, "spread": 0.0012, "max_epochs": 16})
    words = how_chosen(tmp_path)
    assert words["evaluation classifier (sections 4-5)"].endswith("the seed spread (0.0012): 4")
    assert "lr over 0.001, 0.002, 0.004, 0.008, 0.016 x batch 128, 256 at 10 epochs (d = 10): 0.008, batch 128 (a grid edge)" in words[
        "autoencoders (section 1)"]
    assert words["autoencoders (section 1)"].endswith("d = 10: 40 epochs, d = 64: none found")
    assert ": 0.002;" in words["autoencoders (section 1)"]  # the refined rate, inside its grid
    k8 = words["latent GAN, Gaussian noise (section 4)"]
    assert "lr over 0.0001, 0.0003, 0.001: 0.0003; batch_size over 256, 1024: 256 (a grid edge) at 6,000 steps" in k8
    assert "(0.123): 12,000; lr again at that length over 0.0001, 0.0003, 0.0009: 0.0009 (a grid edge), doubled from there by " \
           "the same rule: 24,000;" in k8 and "test images" in k8
    assert "in float32 its validation FD is 3.61 against 3.2 in bfloat16 (outside the seed spread)" in k8
    assert ("256 (a grid edge) at 6,000 steps; then one at a time (kept where it beat the grid's choice by more than "
            "the seed spread, widths at equal multiply-adds; shared by every latent GAN) hidden over 128, 256, 512: "
            "256; r1 over 1, 10, 100: 10; "
            "steps doubled") in k8
    assert "latent GAN, mixture prior (section 4)" not in words  # searchable, not in the report
    assert "(0.123): 6,000; lr again at that length over 0.0001, 0.0003, 0.0009: 0.0003;" in words[
        "conditional GAN (section 5)"]  # the rate stayed: no second length
    assert words["section 3, frozen"].startswith("lr over 0.001, 0.003, 0.01: 0.003; hidden over 512: 512")
    frozen = words["section 3, frozen"]
    assert frozen.endswith("last point): 400") and "weight_decay over 0, 0.0001: 0 (its least possible value)" in frozen
    assert "0.003 (a grid edge)" not in words["section 3, frozen"]  # every numeric edge said, and only edges
    assert words["section 3, selftrain"].endswith("300 steps, 0.1, 0.3")
    assert words["section 3, cluster"] == ("dims over 2, 10: 2 (a grid edge); neighbors over 15, 50: 15 (a grid edge); "
                                           "components over 10, 20, 40: 10 (its least possible value)")
    assert words["Gaussian mixtures (section 4)"].endswith("10, 20, 50, 100, 200 components: 200 (a grid edge)")
    search.open_study("autoencoder", tmp_path).set_user_attr("chosen", {**ae, "refine": None})
    with pytest.raises(RuntimeError, match="no plateau"):
        how_chosen(tmp_path)


def test_the_classifier_study_runs_before_the_autoencoder_study_has_chosen(tmp_path, monkeypatch):
    """It trains on the fit images alone, so it can use a core the autoencoder study leaves idle."""
    tool, calls = search_tool(), []
    monkeypatch.setitem(tool.FAMILIES, "classifier", lambda **kw: calls.append(kw) or {"epochs": 2})
    assert tool.main(["--family", "classifier", "--folder", str(tmp_path)]) == {"epochs": 2}
    assert len(calls) == 1 and calls[0]["folder"] == tmp_path and "recipe" not in calls[0]
    with pytest.raises(RuntimeError, match="autoencoder study has not chosen"):  # the GAN studies still need it
        tool.main(["--family", "gan_k8", "--folder", str(tmp_path)])


def test_a_replayed_choice_keeps_its_stored_seconds_and_adds_no_line(tmp_path):
    from ex3lib import studies

    journal = tmp_path / "family.jsonl"
    studies.set_chosen(studies.open_study("family", tmp_path), {"lr": 1e-3, "values": {1: 0.5}, "seconds": 100.0})
    lines = journal.read_text().count("\n")
    # a resumed search replays the finished study to the same choice, in a fraction of the time
    studies.set_chosen(studies.open_study("family", tmp_path), {"lr": 1e-3, "values": {1: 0.5}, "seconds": 0.2})
    assert journal.read_text().count("\n") == lines
    assert studies.open_study("family", tmp_path).user_attrs["chosen"]["seconds"] == 100.0
    # another choice replaces it
    studies.set_chosen(studies.open_study("family", tmp_path), {"lr": 2e-3, "values": {1: 0.5}, "seconds": 0.2})
    assert studies.open_study("family", tmp_path).user_attrs["chosen"] == {"lr": 2e-3, "values": {"1": 0.5},
                                                                            "seconds": 0.2}
