"""The stored studies under studies/: every trial one that the committed code reads back, and every choice
following from its trials by the search's own rules (replayed here, and on a small real study)."""

from dataclasses import replace

import numpy as np
import pytest
from optuna.trial import TrialState

import helpers as h
from ex3lib import search


def test_the_gan_studies_score_on_validation_images_and_record_their_choice(tmp_path, checkpoint_dir, no_test_images):
    judge = search.Judge(samples=200, draws=2)
    assert len(judge.fit_codes) == h.RECIPE.ae_train_size and len(judge.val_x) == h.RECIPE.ae_val_size
    lines = []
    for family, grid in (("k8", dict(lr=(3e-4,))), ("cgan", dict(aux_weight=(0.0, 0.1)))):
        run = lambda: search.search_gan(judge, family, grid=grid, steps=20, max_doublings=1, folder=tmp_path,
                                        log=lines.append)
        result = run()
        study = search.open_study(f"gan_{family}", tmp_path)
        complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
        for t in complete:
            assert set(search.TRIAL_FIELDS) <= set(t.user_attrs) and t.user_attrs["fd_draw_std"] > 0
            assert t.user_attrs["config"]["train_codes"] == h.RECIPE.ae_train_size  # the fit codes, not all 60,000
        best = min((t for t in complete if t.user_attrs["stage"] == "recipe"), key=lambda t: t.value)
        assert all(result[k] == best.user_attrs["config"][k] for k in grid)
        assert study.user_attrs["chosen"]["family"] == family and lines[-1].startswith(f"gan {family}:")
        noise = [t.value for t in complete if t.user_attrs["stage"] == "noise"]
        assert len(noise) == 2 and result["noise_values"] == [best.value] + noise  # seeds 0 (the choice), 1, 2
        length = result["length"]  # the spread again at the length the grid's spread gave (or the longest run)
        assert length["spread_at"] == (search.choose_length(length["values"], np.std(result["noise_values"], ddof=1))
                                       or max(length["values"]))
        assert length["spread_values"][0] == length["values"][length["spread_at"]]
        assert length["noise"] == pytest.approx(float(np.std(length["spread_values"], ddof=1)))
        assert run()["length"] == result["length"]  # run again: every trial read back from the journal
        replay_gan_study(study, family, grid_at=20)  # the stored-journal test's replay, on a study it can check here
        assert len(search.open_study(f"gan_{family}", tmp_path).trials) == len(study.trials)
    assert {t.user_attrs["config"]["n_classes"] for t in study.trials} == {10}


def stored_study(family: str, tmp_path, direction: str = "minimize"):
    """A copy of the stored study of `family` (opening a journal may lock it); skips where none is stored."""
    import shutil

    journal = search.STUDY_DIR / f"{family}.jsonl"
    if not journal.exists():
        pytest.skip(f"no stored {journal.name}")
    shutil.copy(journal, tmp_path)
    return search.open_study(family, tmp_path, direction=direction)


def test_every_stored_autoencoder_trial_names_the_checkpoint_the_committed_code_trains(tmp_path, monkeypatch):
    """A journal written by other code (another training loop, config field or precision policy) is refused: each
    trial's settings, rebuilt into the report's config, give back its stored checkpoint name and trial key."""
    from ex3lib import runtime

    study = stored_study("autoencoder", tmp_path)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        pytest.skip("the stored autoencoder study has no finished trial yet")
    assert all(set(search.TRIAL_FIELDS) <= set(t.user_attrs) for t in complete)
    assert len({t.user_attrs["precision"] for t in complete}) == 1  # one precision policy for the whole study
    for t in complete:
        p = t.user_attrs["config"]
        config = replace(h.ae_config(p["d"], recipe=h.FULL), lr=p["lr"], batch_size=p["batch_size"], epochs=p["epochs"], seed=p["seed"])
        monkeypatch.setattr(runtime, "PRECISION", t.user_attrs["precision"])
        assert search._params(config) == p
        assert search.cache_key(config) == t.user_attrs["cache_key"], f"trial {t.number} names a checkpoint of other code"
        assert t.user_attrs["key"] == search.ae_trial_key(t.user_attrs["stage"], config)
        assert len(t.user_attrs["curve"]) == p["epochs"] and t.value == t.user_attrs["curve"][-1]


def stale_trials(study, ae_key: str, gan_base=None) -> list:
    """The complete trials of a stored latent-GAN or few-label study that the committed code would not read back:
    another autoencoder than `ae_key` (the report's under the autoencoder study's choice), another checkpoint name
    for a GAN's settings on the family's config `gan_base`, or another code hash of what the trial ran."""
    from ex3lib import cache, search_fewlabel as fl

    code = {"transfer": fl.TRANSFER_CODE, "selftrain": fl.TRANSFER_CODE, "cluster": fl.CLUSTER_CODE,
            "mixture": fl.MIXTURE_CODE}
    stale = []
    for t in study.trials:
        if t.state != TrialState.COMPLETE:
            continue
        p, kind = t.user_attrs["config"], t.user_attrs["key"].split(":", 1)[0]
        if gan_base is not None:  # a latent GAN: its settings on the family's config rebuild its checkpoint's name
            ok = p["ae_key"] == ae_key and h.cache_key(replace(gan_base, **p)) == t.user_attrs["cache_key"]
        else:
            ok = p["ae_key"] == ae_key and p.get("code") == cache.code_hash(*code[kind])
        if not ok:
            stale.append(t.number)
    return stale


def test_a_stale_trial_of_a_gan_or_few_label_study_is_found(tmp_path):
    """stale_trials on made-up trials: one of the committed code and autoencoder, then one per way of going stale."""
    import optuna
    from ex3lib import cache, search_fewlabel as fl

    base = h.GANConfig(noise_dim=8, latent_dim=10, ae_key="ae1")
    good = {k: getattr(base, k) for k in search.GAN_FIELDS}
    gans = search.open_study("gan_k8", tmp_path / "gan")
    for config, key in ((good, h.cache_key(base)), ({**good, "ae_key": "ae2"}, h.cache_key(replace(base, ae_key="ae2"))),
                        ({**good, "lr": 0.5}, h.cache_key(base)), ({**good, "lr": 0.5}, h.cache_key(replace(base, lr=0.5)))):
        gans.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"config": config, "cache_key": key,
                                                                        "key": "recipe:{}"}))
    assert stale_trials(gans, "ae1", base) == [1, 2]
    few = search.open_study("unlabelled", tmp_path / "few")
    cluster = {"ae_key": "ae1", "code": cache.code_hash(*fl.CLUSTER_CODE)}
    for config, kind in ((cluster, "cluster"), (cluster, "mixture"), ({**cluster, "ae_key": "ae2"}, "cluster")):
        few.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"config": config, "cache_key": "",
                                                                       "key": f"{kind}:{{}}"}))
    assert stale_trials(few, "ae1") == [1, 2]


@pytest.mark.parametrize("family,direction", [("gan_k8", "minimize"), ("gan_cgan", "minimize"),
                                              ("gan_gmm_prior", "minimize"), ("transfer", "maximize"),
                                              ("unlabelled", "maximize"), ("mixture", "maximize")])
def test_every_stored_gan_and_few_label_trial_is_one_the_committed_code_reads_back(family, direction, tmp_path,
                                                                                  monkeypatch):
    """A journal of these studies written by other code, or on another autoencoder than the one the stored
    autoencoder study chose, is refused: the search would train each such trial again."""
    import shutil

    from ex3lib import runtime

    study = stored_study(family, tmp_path, direction)
    if not [t for t in study.trials if t.state == TrialState.COMPLETE]:
        pytest.skip(f"the stored {family} study has no finished trial yet")
    # the run's precision, the one its trials name: a checkpoint's name holds it (the search's is float32)
    monkeypatch.setattr(runtime, "PRECISION", next(t.user_attrs["precision"] for t in study.trials
                                                   if t.state == TrialState.COMPLETE))
    for needed in ("autoencoder", "gan_k8"):  # the recipe these studies ran on, from the studies before them
        if (search.STUDY_DIR / f"{needed}.jsonl").exists():
            shutil.copy(search.STUDY_DIR / f"{needed}.jsonl", tmp_path)
    recipe = search.studied_recipe(tmp_path, h.FULL)
    gan_base = None
    if family.startswith("gan_"):
        if family != "gan_k8":
            recipe = search.shared_gan_recipe(recipe, tmp_path)
        gan_base = search.gan_base(family[4:], h.ae_config(recipe=recipe), recipe.ae_train_size, recipe)  # fit codes
    assert stale_trials(study, h.cache_key(h.ae_config(recipe=recipe)), gan_base) == []


def test_the_stored_autoencoder_studys_choice_follows_from_its_trials(tmp_path):
    import numpy as np

    study = stored_study("autoencoder", tmp_path)
    if "chosen" not in study.user_attrs:
        pytest.skip("the stored autoencoder study is still running (no choice yet)")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert {t.user_attrs["precision"] for t in complete} == {study.user_attrs["chosen"]["precision"]}
    chosen = study.user_attrs["chosen"]
    best = min((t for t in complete if t.user_attrs["stage"] == "recipe"), key=lambda t: t.value).user_attrs["config"]
    assert (chosen.get("recipe_lr", chosen["lr"]), chosen["batch_size"]) == (best["lr"], best["batch_size"])
    if chosen.get("refine"):  # the refined rate, its spread and doubling at the length: from the stored trials
        refine, by_key = chosen["refine"], {t.user_attrs["cache_key"]: t for t in complete}
        at = lambda d, lr, seed, epochs: next(t.value for t in complete if t.user_attrs["config"] == {
            **t.user_attrs["config"], "d": d, "lr": lr, "seed": seed, "epochs": epochs, "batch_size": best["batch_size"]})
        rates, epochs = refine["rates"], refine["epochs"]
        score = {r: np.mean([at(int(d), r, 0, epochs) / min(at(int(d), q, 0, epochs) for q in rates)
                             for d in refine["values"]]) for r in rates}
        assert chosen["lr"] == refine["lr"] == min(rates, key=lambda r: (score[r], -r)) and by_key
        for d, length in chosen["lengths"].items():
            spread = float(np.std([at(int(d), chosen["lr"], s, epochs) for s in (0, 1, 2)], ddof=1))
            # every stored run of the refined rate at seed 0: half the length, the length and its doublings
            values = {t.user_attrs["config"]["epochs"]: t.value for t in complete if t.user_attrs["config"] == {
                **t.user_attrs["config"], "d": int(d), "lr": chosen["lr"], "seed": 0, "batch_size": best["batch_size"]}
                and t.user_attrs["config"]["epochs"] >= epochs // 2}  # (the recipe stage's 10 epochs are not its)
            assert {epochs // 2, epochs, 2 * epochs} <= set(values) or epochs % 2
            assert spread == pytest.approx(length["noise"]) and search.choose_length(values, spread) == length["epochs"]
            assert values == {int(k): v for k, v in length["values"].items()}
        return
    for d, length in chosen["lengths"].items():
        mine = lambda stage: [t for t in complete if t.user_attrs["stage"] == stage and t.user_attrs["config"]["d"] == int(d)
                              and (t.user_attrs["config"]["lr"], t.user_attrs["config"]["batch_size"]) == (best["lr"], best["batch_size"])]
        seeds = {t.user_attrs["config"]["seed"]: t.value for t in mine("noise")}
        noise = float(np.std(list(seeds.values()), ddof=1))
        values = {t.user_attrs["config"]["epochs"]: t.value for t in mine("length")} | {10: seeds[0]}
        assert noise == pytest.approx(length["noise"]) and search.choose_length(values, noise) == length["epochs"]


@pytest.mark.parametrize("family", ["k8", "cgan", "gmm_prior"])
def test_each_stored_gan_study_holds_every_field_and_its_choice_follows_from_its_trials(family, tmp_path):
    """Replays the rules of search_gan on the stored trials (replay_gan_study)."""
    import shutil

    journal = search.STUDY_DIR / f"gan_{family}.jsonl"
    if not journal.exists():
        pytest.skip(f"no stored {journal.name}")
    shutil.copy(journal, tmp_path)  # read a copy: opening a journal may lock it
    replay_gan_study(search.open_study(f"gan_{family}", tmp_path), family)


def replay_gan_study(study, family: str, grid_at: int | None = None) -> None:
    """The rules of search_gan on a study's trials (its grid at `grid_at` steps at batch 256, by default the
    family's grid_steps): the grid's best, the spread of seeds 0-2, the k8 study's
    coordinates, the length rule on the doublings, the spread again at that length and the rule with it, the
    refined rate at that length (and a moved rate's own doublings)."""
    import numpy as np

    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert all(set(search.TRIAL_FIELDS) <= set(t.user_attrs) for t in complete)
    if "chosen" not in study.user_attrs:
        pytest.skip(f"the {study.study_name} study is still running (no choice yet)")
    chosen = study.user_attrs["chosen"]
    assert complete
    stage = lambda name: [t for t in complete if t.user_attrs["stage"] == name]
    # one precision, the study's, except the precision check's float32 run of the choice
    assert len({t.user_attrs["precision"] for t in complete if t.user_attrs["stage"] != "precision"}) == 1
    assert all(t.user_attrs["precision"] == "float32" for t in stage("precision"))
    best = min(stage("recipe"), key=lambda t: t.value)
    # the grid at the multiply-adds its steps were set for at the start width (search.grid_steps), every batch
    # seeing as many codes
    at = grid_at or search.grid_steps(h.GANConfig(**best.user_attrs["config"]), search.GAN_GRIDS[family][1])
    assert all(t.user_attrs["config"]["steps"] == at * 256 // t.user_attrs["config"]["batch_size"] for t in stage("recipe"))
    grid_choice = {k: best.user_attrs["config"][k] for k in chosen["grid"]}
    lr = best.user_attrs["config"]["lr"]
    assert all(chosen[k] == v for k, v in grid_choice.items() if k != "lr") and chosen["steps"] == best.user_attrs["config"]["steps"]
    same = lambda t, **kw: all(t.user_attrs["config"][k] == v for k, v in {**grid_choice, **kw}.items())
    noise_values = [best.value] + [t.value for s in (1, 2) for t in stage("noise") if same(t, seed=s)]
    noise = float(np.std(noise_values, ddof=1))
    assert noise_values == pytest.approx(chosen["noise_values"])  # the grid's spread (the length's is measured again)
    # the k8 study's coordinate stage: the shared width and R1 weight, one at a time, moved only beyond the noise
    # (each option at the multiply-adds of the setting it would replace: search.equal_compute)
    current, config = best.value, h.GANConfig(**best.user_attrs["config"])
    shared = {k: getattr(config, k) for k in search.COORDINATES}
    for name in (search.COORDINATES if family == "k8" else {}):
        tried = {t.user_attrs["config"][name]: t for t in stage("coordinate")
                 if h.GANConfig(**t.user_attrs["config"]) == search.equal_compute(
                     config, replace(config, **{name: t.user_attrs["config"][name]}))}
        scored = {shared[name]: current} | {option: t.value for option, t in tried.items()}
        pick = min(scored, key=scored.get)
        stored = chosen["coordinate"][name]  # every value tried, at its own steps, as the study recorded them
        assert {float(k): v for k, v in stored["values"].items()} == pytest.approx(
            {float(k): v for k, v in scored.items()})
        assert {float(k): s for k, s in stored["steps"].items()} == {
            float(k): (tried[k].user_attrs["config"]["steps"] if k in tried else config.steps) for k in scored}
        if scored[pick] < current - noise:
            shared[name], current, config = pick, scored[pick], h.GANConfig(**tried[pick].user_attrs["config"])
    assert chosen["shared"] == shared
    values = {config.steps: current} | {
        t.user_attrs["config"]["steps"]: t.value for t in stage("length") if same(t, seed=0, **shared)}
    # the spread again at the length the grid's spread gave, then the rule with it
    # (longer runs added after it leave the shortest plateau under the grid's spread where it was)
    at = search.choose_length(values, noise) or max(values)
    assert chosen["length"]["spread_at"] == at
    spread_values = [values[at]] + [t.value for s in (1, 2) for t in (*stage("noise"), *stage("spread"))
                                    if same(t, seed=s, steps=at, **shared)][:2]
    noise = float(np.std(spread_values, ddof=1))
    assert spread_values == pytest.approx(chosen["length"]["spread_values"]) and noise == pytest.approx(chosen["length"]["noise"])
    length = search.choose_length(values, noise)
    refine = chosen["refine"]
    if refine is None:
        assert chosen.get("lr", lr) == lr and chosen["length"]["steps"] == length  # (a grid without rates)
        return
    at_length = {r: t.value for t in stage("refine") for r in refine["rates"]
                 if same(t, seed=0, lr=r, steps=length, **shared)}
    scored = {r: at_length[r] for r in (lr / 3, lr, lr * 3)}
    for extension in range(3):  # moves only by more than the seed spread; a move onto an edge tries one more past it
        best_rate = min(scored, key=scored.get)
        moves = scored[best_rate] < scored[lr] - noise
        if extension == 2 or not moves or min(scored) < best_rate < max(scored):
            break
        further = best_rate / 3 if best_rate == min(scored) else best_rate * 3
        scored[further] = at_length[further]
    assert set(scored) == set(at_length) == set(refine["rates"])
    assert refine["lr"] == (best_rate if moves else lr)
    assert chosen["lr"] == refine["lr"]
    if refine["lr"] == lr:
        assert chosen["length"]["steps"] == length
    else:  # the moved rate's doublings from the chosen length
        moved = {t.user_attrs["config"]["steps"]: t.value for t in stage("refine")
                 if same(t, seed=0, lr=refine["lr"], **shared)}
        assert moved == pytest.approx({int(k): v for k, v in chosen["length"]["values"].items()})
        assert search.choose_length(moved, noise) == chosen["length"]["steps"]


def test_every_stored_study_trained_in_one_precision(tmp_path):
    """Each stored journal's trials share the study's precision (a latent-GAN study's float32 check apart)."""
    journals = sorted(search.STUDY_DIR.glob("*.jsonl"))
    if not journals:
        pytest.skip("no stored study")
    for journal in journals:
        study = stored_study(journal.stem, tmp_path)
        precision = search.study_precision(study)
        for t in study.trials:
            if t.state == TrialState.COMPLETE and t.user_attrs.get("stage") != "precision":
                assert t.user_attrs["precision"] == precision, (journal.name, t.number)


def test_a_cold_report_keeps_exactly_the_checkpoints_a_stored_trial_trained(tmp_path, checkpoint_dir):
    from ex3lib.studies import clear_checkpoints, open_study

    studies = tmp_path / "studies"
    study = open_study("autoencoder", studies)
    for key, state in (("aaaa", TrialState.COMPLETE), ("bbbb", TrialState.FAIL), ("", TrialState.COMPLETE)):
        trial = study.ask()
        trial.set_user_attr("cache_key", key)
        study.tell(trial, 1.0 if state == TrialState.COMPLETE else None, state=state)
    checkpoint_dir.mkdir()
    names = ["AEConfig-aaaa.pt", "AEConfig-bbbb.pt", "GANConfig-cccc.pt", "AEConfig-aaaa.broken", "x.tmp"]
    for name in names:
        (checkpoint_dir / name).write_bytes(b"")
    assert clear_checkpoints(studies=studies) == (1, 4)
    assert sorted(p.name for p in checkpoint_dir.iterdir()) == ["AEConfig-aaaa.pt"]
    assert clear_checkpoints(tmp_path / "nowhere", studies) == (0, 0)  # no cache yet: nothing to do


def test_the_stored_classifier_study_names_the_committed_checkpoints_and_its_choice_follows_from_its_trials(
        tmp_path, monkeypatch):
    from ex3lib import runtime

    study = stored_study("classifier", tmp_path)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    base = h.eval_classifier_config(h.FULL)
    assert len({t.user_attrs["precision"] for t in complete}) == 1  # one precision policy for the whole study
    for t in complete:  # the checkpoint the committed code would train for the trial's epochs and seed
        config = replace(base, epochs=t.user_attrs["config"]["epochs"], seed=t.user_attrs["config"]["seed"])
        monkeypatch.setattr(runtime, "PRECISION", t.user_attrs["precision"])  # a checkpoint's name holds it
        assert t.user_attrs["cache_key"] == h.cache_key(config), t.number
    chosen = study.user_attrs.get("chosen")
    if chosen is None:
        pytest.skip("the stored classifier study has not chosen yet")
    value = {(t.user_attrs["config"]["epochs"], t.user_attrs["config"]["seed"]): t.value for t in complete}
    values = {int(e): v for e, v in chosen["values"].items()}
    assert values == {e: value[e, 0] for e in values}
    assert chosen["noise"] == pytest.approx(np.std([value[1, s] for s in (0, 1, 2)], ddof=1))
    at = chosen["spread_at"]
    if at is not None:
        assert chosen["spread"] == pytest.approx(np.std([value[at, s] for s in (0, 1, 2)], ddof=1))
    assert chosen["epochs"] == search.choose_length(values, chosen["spread"])


def _trial_keys(family: str, tmp_path, direction: str = "minimize") -> set:
    study = stored_study(family, tmp_path, direction)
    return {t.user_attrs.get("cache_key") for t in study.trials if t.state == TrialState.COMPLETE}


def test_the_report_recipe_is_every_stored_studys_choice():
    """Every setting the report takes from a study is the stored choice (search.picked_recipe): a study that chose
    again, or a recipe edited by hand, fails here."""
    assert search.picked_recipe(base=h.FULL) == h.FULL


def test_the_reports_models_are_the_stored_studies_trials(tmp_path):
    """Train once: the report's autoencoder of sections 3-5, its evaluation classifier and every latent GAN the
    search trained at the chosen setting and length (seeds 0-2) are named as the search's trials named them, so
    the report loads what the search trained wherever its checkpoints are present."""
    if h.PRECISION != "float32":
        pytest.skip("the studies train in float32; a run in another precision trains other models")
    ae = h.ae_config(recipe=h.FULL)
    ae_trials = _trial_keys("autoencoder", tmp_path)
    assert h.cache_key(ae) in ae_trials
    # section 1's models at the sizes the autoencoder study measured its seed spread at: its noise stage's trials
    section1 = [h.section1_config(d, seed=s, recipe=h.FULL) for d in (10, 64) for s in h.FULL.seeds]
    assert [h.cache_key(c) in ae_trials for c in section1] == [True] * len(section1)
    assert h.cache_key(h.eval_classifier_config(h.FULL)) in _trial_keys("classifier", tmp_path)
    gans = {"k8": [h.gan_config(h.FULL.report_noise_dim, ae, seed=s, recipe=h.FULL) for s in h.FULL.gan_seeds],
            "cgan": [h.gan_config(h.FULL.report_noise_dim, ae, conditional=True, seed=s, recipe=h.FULL)
                     for s in h.FULL.cgan_seeds]}
    for family, configs in gans.items():
        keys = _trial_keys(f"gan_{family}", tmp_path)
        assert [h.cache_key(c) in keys for c in configs] == [True] * len(configs), family


def test_only_the_searchs_models_are_kept_beside_the_studies_and_they_come_back_where_missing(tmp_path):
    from ex3lib.studies import keep_models, open_study, restore_models

    studies, checkpoints, models = tmp_path / "studies", tmp_path / "checkpoints", tmp_path / "models"
    study = open_study("gan_k8", studies)
    trial = study.ask()
    trial.set_user_attr("cache_key", "aaaa")
    study.tell(trial, 1.0)
    checkpoints.mkdir()
    for name in ("GANConfig-aaaa.pt", "GANConfig-bbbb.pt"):
        (checkpoints / name).write_bytes(name.encode())
    with pytest.raises(ValueError, match="bbbb"):  # no trial trained it: not the search's
        keep_models(["GANConfig-aaaa.pt", "GANConfig-bbbb.pt"], checkpoints, models, studies)
    assert keep_models(["GANConfig-aaaa.pt"], checkpoints, models, studies) == ["GANConfig-aaaa.pt"]
    assert keep_models(["GANConfig-aaaa.pt"], checkpoints, models, studies) == []  # kept already
    (checkpoints / "GANConfig-aaaa.pt").unlink()
    assert restore_models(checkpoints, models) == 1 and (checkpoints / "GANConfig-aaaa.pt").read_bytes() == b"GANConfig-aaaa.pt"
    assert restore_models(checkpoints, models) == 0
