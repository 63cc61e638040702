"""The few-label studies (section 3's arms, self-training, cluster-then-label) and the mixture's size: each arm's
length from its label counts' plateaus, rising settings trained longer, grids extended past their edges, every
trial read back."""

import pytest
from optuna.trial import TrialState

import helpers as h
from ex3lib import search, search_fewlabel


def test_an_arms_length_is_its_slowest_label_counts_plateau_and_a_rising_choice_is_trained_longer(monkeypatch, tmp_path):
    """10 labels plateau at once; 1,000 labels rise until 200 steps (scratch: until 400): the frozen arm's
    length is 1,000 labels' plateau, not the mean curve's; scratch, still rising at its grid's last point (200),
    is trained again with the curve doubled to 400 (the last point again) and 800, where it has stopped rising."""
    from types import SimpleNamespace

    runs = {10: {"curve": {50: 0.70, 100: 0.70, 200: 0.69}}, 1000: {"curve": {50: 0.90, 100: 0.93, 200: 0.95}}}
    assert search.plateau_steps({s: (runs[10]["curve"][s] + runs[1000]["curve"][s]) / 2 for s in (50, 100, 200)}) == 100
    assert search.arm_steps(runs) == 200

    def curves(data, arm, config, labels, draws, curve_steps):
        top = 400 if arm == "scratch" else 200
        return {10: {"curve": {s: 0.70 for s in curve_steps}, "train": 1.0},
                1000: {"curve": {s: 0.90 + 0.01 * min(s, top) / 50 for s in curve_steps}, "train": 1.0}}

    from ex3lib import search_fewlabel

    monkeypatch.setattr(search_fewlabel, "arm_curves", curves)
    data = SimpleNamespace(ae_config=h.ae_config())
    grids = {"frozen": dict(lr=(1e-3,)), "scratch": dict(lr=(1e-3,))}
    steps = {"frozen": (50, 100, 200, 400), "encoder": (50, 100, 200)}
    result = search.search_transfer(data, grids, labels=(10, 1000), draws=1, curve_steps=steps, folder=tmp_path,
                                    log=lambda line: None)
    assert result["frozen"]["steps"] == 200 and not result["frozen"]["still_rising"]
    assert result["frozen"]["curve_steps"] == [50, 100, 200, 400]  # not rising at its last point: no doubling
    assert result["scratch"]["steps"] == 400 and result["scratch"]["curve_steps"] == [50, 100, 200, 400, 800]
    assert not result["scratch"]["still_rising"]
    study = search.open_study("transfer", tmp_path, direction="maximize")
    assert result["scratch"]["key"] == study.trials[-1].user_attrs["key"]  # the longest curve's trial


def test_every_setting_still_rising_is_trained_longer_and_a_slower_one_can_win(monkeypatch, tmp_path):
    """At the grid's last point (200 steps) lr 1e-3 leads and 3e-4 is behind, both still rising; 1e-2 has stopped.
    Both rising settings are trained with the curve doubled (400), where 3e-4 takes the lead, both still rising,
    so both are doubled again (800), where 3e-4 has stopped rising at 400 steps: the choice, with that length.
    1e-2 is never trained longer."""
    from types import SimpleNamespace

    from ex3lib import search_fewlabel

    accuracy = {1e-3: {50: 0.60, 100: 0.70, 200: 0.80, 400: 0.85, 800: 0.85},
                3e-4: {50: 0.50, 100: 0.60, 200: 0.75, 400: 0.90, 800: 0.902},
                1e-2: {50: 0.70, 100: 0.70, 200: 0.70, 400: 0.70, 800: 0.70}}

    def curves(data, arm, config, labels, draws, curve_steps):
        return {10: {"curve": {s: accuracy[config.lr][s] for s in curve_steps}, "train": 1.0}}

    monkeypatch.setattr(search_fewlabel, "arm_curves", curves)
    result = search.search_transfer(SimpleNamespace(ae_config=h.ae_config()), {"scratch": dict(lr=(3e-4, 1e-3, 1e-2))},
                                    labels=(10,), draws=1, curve_steps={"encoder": (50, 100, 200)},
                                    folder=tmp_path, log=lambda line: None)
    assert result["scratch"]["lr"] == 3e-4 and result["scratch"]["steps"] == 400
    assert result["scratch"]["curve_steps"] == [50, 100, 200, 400, 800] and not result["scratch"]["still_rising"]
    assert result["scratch"]["validation"] == 0.90
    study = search.open_study("transfer", tmp_path, direction="maximize")
    tried = sorted((t.user_attrs["config"]["lr"], t.user_attrs["config"]["curve_steps"][-1]) for t in study.trials)
    assert tried == [(3e-4, 200), (3e-4, 400), (3e-4, 800), (1e-3, 200), (1e-3, 400), (1e-3, 800), (1e-2, 200)]


def test_the_transfer_study_records_each_arms_curve_and_choice(tmp_path, checkpoint_dir, no_test_images):
    data = search.TransferData()
    assert len(data.fit_codes) == h.RECIPE.ae_train_size and len(data.val_codes) == h.RECIPE.ae_val_size
    grids = {"frozen": dict(lr=(1e-3, 3e-3), hidden=(16,), weight_decay=(0.0,)),
             "finetune": dict(encoder_lr=(1e-4,), batchnorm=("frozen",)), "scratch": dict(lr=(1e-3,), max_shift=(0,))}
    steps = {"frozen": (2, 4), "encoder": (2, 4)}
    lines = []
    result = search.search_transfer(data, grids, labels=(10,), draws=1, curve_steps=steps, folder=tmp_path,
                                    log=lines.append)
    study = search.open_study("transfer", tmp_path, direction="maximize")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert {t.user_attrs["stage"] for t in complete} == set(grids)
    for t in complete:
        assert set(search.TRIAL_FIELDS) <= set(t.user_attrs)
        # the grid's curve, or a choice still rising at its last point trained again with the curve doubled
        assert sorted(t.intermediate_values) == t.user_attrs["config"]["curve_steps"] in ([2, 4], [2, 4, 8], [2, 4, 8, 16])
        curve = t.intermediate_values  # scored at its length, the one the report would train it
        runs = {n: {"curve": {int(s): v for s, v in r["curve"].items()}} for n, r in t.user_attrs["per_labels"].items()}
        assert t.value == curve[search.arm_steps(runs)] == curve[t.user_attrs["steps"]]
        assert t.user_attrs["best"] == max(curve.values()) >= t.value
    frozen = [t for t in complete if t.user_attrs["stage"] == "frozen"]
    best = [t.user_attrs["config"]["lr"] for t in frozen if t.value == max(f.value for f in frozen)]  # ties are possible
    assert result["frozen"]["lr"] in best and study.user_attrs["chosen"] == result
    assert all(set(t.user_attrs["per_labels"]) == {"10"} for t in complete)
    n_trials = len(study.trials)
    search.search_transfer(data, grids, labels=(10,), draws=1, curve_steps=steps, folder=tmp_path, log=lines.append)
    assert len(search.open_study("transfer", tmp_path, direction="maximize").trials) == n_trials  # all read back
    # the appendix's selection table and curves read each arm's chosen trial back
    unlabelled = {"selftrain": dict(pseudo_steps=4, pseudo_fractions=[0.5], validation=0.3, kept=False),
                  "cluster": dict(dims=2, neighbors=5, components=10, validation=0.4, grid=dict(dims=[2], neighbors=[5]))}
    search.open_study("unlabelled", tmp_path, direction="maximize").set_user_attr("chosen", unlabelled)
    from ex3lib.chosen import transfer_selection

    picked = transfer_selection(tmp_path)
    by_key = {t.user_attrs["key"]: t for t in complete}
    for arm, pick in result.items():
        assert picked["curves"][arm] == {10: by_key[pick["key"]].intermediate_values} and picked["steps"][arm] == pick["steps"]
    rows = {r["arm"]: r for r in picked["rows"]}
    assert list(rows) == [*grids, "selftrain", "cluster"] and picked["draws"] == 1
    assert rows["frozen"]["validation"] == result["frozen"]["validation"]
    assert rows["frozen"]["setting"] == f"lr {result['frozen']['lr']:g}, hidden 16, weight_decay 0, steps {result['frozen']['steps']}"
    assert rows["selftrain"]["setting"].endswith("(not kept)") and rows["cluster"]["setting"] == "dims 2, neighbors 5"
    assert h.plot_transfer_validation(picked).axes[0].get_title() == "10 labels"


def test_the_unlabelled_and_mixture_studies_choose_inside_their_grids_and_read_back(tmp_path, checkpoint_dir, no_test_images):
    data = search.TransferData()
    head = dict(lr=1e-3, hidden=16, weight_decay=0.0, steps=4, validation=0.5)
    search.open_study("transfer", tmp_path, direction="maximize").set_user_attr("chosen", {"frozen": head})
    lines = []
    run = lambda: search.search_unlabelled(data, labels=(10,), draws=1, folder=tmp_path, log=lines.append,
                                           selftrain_grid=dict(pseudo_steps=(2, 4), pseudo_fractions=((0.5,),)),
                                           cluster_grid=dict(dims=(2,), neighbors=(5,), components=(10,)))
    result = run()
    study = search.open_study("unlabelled", tmp_path, direction="maximize")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert all(set(search.TRIAL_FIELDS) <= set(t.user_attrs) for t in complete)
    selftrain = [t for t in complete if t.user_attrs["stage"] == "selftrain"]
    rounds = [t for t in selftrain if t.user_attrs["config"]["pseudo_fractions"]]
    best = max(rounds, key=lambda t: t.value)
    assert result["selftrain"]["pseudo_steps"] == best.user_attrs["config"]["pseudo_steps"]
    alone = next(t for t in selftrain if not t.user_attrs["config"]["pseudo_fractions"])  # the head alone
    lead = search_fewlabel.paired_lead(best.user_attrs["scores"], alone.user_attrs["scores"])
    assert result["selftrain"]["kept"] == lead["ahead"] and lead["mean"] == pytest.approx(best.value - alone.value)
    assert search_fewlabel.paired_lead([0.9, 0.8, 0.7], [0.8, 0.7, 0.6])["ahead"]  # the same lead on every draw
    assert not search_fewlabel.paired_lead([0.9, 0.6, 0.8], [0.7, 0.8, 0.6])["ahead"]  # +0.2, -0.2, +0.2: level
    if best.user_attrs["config"]["pseudo_steps"] == 4:  # on the top edge: the grid grew
        assert result["selftrain"]["grid"]["pseudo_steps"][:3] == [2, 4, 12]
    assert result["cluster"]["components"] == 10 and 0 < result["cluster"]["validation"] <= 1
    n_trials = len(study.trials)
    assert run() == result and len(search.open_study("unlabelled", tmp_path, direction="maximize").trials) == n_trials

    mixture = search.search_mixture(data, components=(2, 4), folder=tmp_path, log=lines.append)
    scores = {int(k): v for k, v in mixture["scores"].items()}
    assert mixture["components"] == max(scores, key=scores.get) and set(scores) == set(mixture["grid"])
    grid = mixture["grid"]  # 2, 4, then past whichever edge the choice took (twice at most; not below 1)
    assert grid[grid.index(2):grid.index(4) + 1] == [2, 4]
    assert grid[0] < mixture["components"] < grid[-1] or len(grid) == 4 or mixture["components"] == 1


def test_a_choice_on_either_edge_of_a_numeric_grid_extends_it_down_to_its_floor():
    grid = {"neighbors": [15, 50], "components": [10, 20], "dims": [2, 10], "rate": [0.1, 0.3],
            "fractions": [(0.5,), (0.1, 0.3)]}
    choice = {"neighbors": 15, "components": 10, "dims": 10, "rate": 0.1, "fractions": (0.5,)}
    assert search_fewlabel.extended(grid, choice, floors={"components": 10}) == ["neighbors", "dims", "rate"]
    assert grid == {"neighbors": [5, 15, 50], "components": [10, 20], "dims": [2, 10, 30],
                    "rate": [pytest.approx(0.1 / 3), 0.1, 0.3], "fractions": [(0.5,), (0.1, 0.3)]}
    assert search_fewlabel.extended(grid, {**choice, "neighbors": 15, "dims": 2, "rate": 0.1}) == []  # inside; dims 2: 0 < 1
    assert search_fewlabel.extended({"steps": [2, 4]}, {"steps": 2}, floors={"steps": 1}) == []  # 2 // 3 < 1


def test_reading_the_choice_of_a_study_never_stored_creates_no_journal(tmp_path):
    assert search.stored_choice("unlabelled", tmp_path) is None and not list(tmp_path.iterdir())
    search.open_study("unlabelled", tmp_path).set_user_attr("chosen", {"cluster": {}})
    assert search.stored_choice("unlabelled", tmp_path) == {"cluster": {}}
