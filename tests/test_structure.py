"""The code's layout: modules of a readable size without import cycles, one recipe value, checkpoint names
that follow the training code into every module and survive a move."""

import ast
import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import pytest

import helpers as h
from conftest import patch_everywhere
from ex3lib import settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ex3lib"


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def project_files():
    return [p for p in [ROOT / "helpers.py", ROOT / "conftest.py", *PACKAGE.glob("*.py"), *(ROOT / "tests").glob("*.py"),
                        *(ROOT / "tools").glob("*.py")]]


def test_no_project_python_file_is_over_800_lines():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in project_files()}
    assert len(sizes) > 20 and all(n > 0 for n in sizes.values())
    assert max(sizes.values()) <= 800, {k: v for k, v in sizes.items() if v > 800}


def package_imports() -> dict:
    """{module: modules of the package it imports}, read from the source."""
    graph = {}
    for path in PACKAGE.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ex3lib"):
                deps.add(node.module.split(".")[1] if "." in node.module else node.names[0].name)
        graph[path.stem] = deps - {path.stem}
    return graph


def cycle(graph: dict):
    """A cycle of the graph as a list of nodes, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep] if dep in path else [node, dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_the_package_imports_form_no_cycle():
    graph = package_imports()
    assert {"settings", "runtime", "cache", "data", "autoencoder", "gan", "report", "figures"} <= set(graph)
    assert graph["settings"] == set() and "autoencoder" in graph["gan"]
    assert cycle(graph) is None, cycle(graph)
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_rewrites_its_own_globals_and_the_notebook_imports_helpers():
    for path in project_files():
        assert "globals()" + ".update" not in path.read_text(), path
    assert re.search(r"^import helpers as h$", (ROOT / "ex3.py").read_text(), re.MULTILINE)


def test_the_recipe_is_one_frozen_value_and_the_smoke_mode_a_change_of_it():
    assert dataclasses.is_dataclass(settings.Recipe)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.FULL.ae_epochs = 1
    assert settings.RECIPE is (settings.SMOKE_RECIPE if settings.SMOKE else settings.FULL)
    changed = {f.name for f in dataclasses.fields(settings.Recipe)
               if getattr(settings.FULL, f.name) != getattr(settings.SMOKE_RECIPE, f.name)}
    assert {"ae_epochs", "gan_steps", "test_size"} <= changed and "gan_recipe" not in changed


def test_a_config_built_without_arguments_is_the_reports():
    full = settings.FULL
    assert h.AEConfig() == h.ae_config(recipe=full)
    assert h.ClassifierConfig() == h.eval_classifier_config(full)
    # apart from self-training's schedule: its default is where the few-label studies start, the report's their pick
    assert dataclasses.replace(h.TransferConfig(), pseudo_fractions=full.selftrain_fractions,
                               pseudo_steps=full.selftrain_steps) == h.transfer_config(full)
    assert h.GANConfig() == dataclasses.replace(h.gan_config(full.report_noise_dim, h.ae_config(recipe=full), recipe=full),
                                                ae_key="")


def test_config_classes_hold_values_only():
    """Checkpoint names read a config's values, not its class's source: so no training logic may hide there."""
    for config in (h.AEConfig, h.ClassifierConfig, h.GANConfig, h.TransferConfig):
        methods = {name for name, value in vars(config).items() if callable(value) and not name.startswith("__")}
        assert methods == set() and h.is_config(config), (config, methods)


def test_every_cache_key_of_the_full_report_is_the_recorded_one():
    cache_keys = load_tool("cache_keys")
    recorded = json.loads((ROOT / "tests" / "cache_keys.json").read_text())
    keys = cache_keys.report_cache_keys()
    assert len(keys) == len(recorded) == 106
    assert keys == recorded, "training code changed: if on purpose, run `python tools/cache_keys.py --write`"


@pytest.mark.parametrize("name, module, families", [
    ("check_images", "data", {"AEConfig"}),  # the Encoder checks its input with data.check_images
    ("adam", "runtime", {"AEConfig", "ClassifierConfig"}),
    ("fit_classifier", "classifier", {"GANConfig"}),  # the conditional GAN's auxiliary classifier
    ("random_shift", "data", {"ClassifierConfig"}),
])
def test_a_changed_function_in_another_module_renames_the_families_that_train_with_it(monkeypatch, name, module,
                                                                                      families):
    configs = {"AEConfig": h.ae_config(), "ClassifierConfig": h.eval_classifier_config(),
               "GANConfig": h.gan_config(8, h.ae_config())}
    assert getattr(h, name).__module__ == f"ex3lib.{module}"
    before = {f: h.cache_key(c) for f, c in configs.items()}
    original = getattr(h, name)

    def changed(*args, **kwargs):  # the same behaviour, another source
        return original(*args, **kwargs)

    patch_everywhere(monkeypatch, name, changed)
    after = {f: h.cache_key(c) for f, c in configs.items()}
    renamed = {f for f in configs if before[f] != after[f]}
    assert families <= renamed
    # A family renamed only when its training reaches the function (the GAN's key also names its autoencoder's).
    reach = {f for f in configs if name in h.training_code(f)}
    assert reach >= families
    assert renamed - families <= {"GANConfig"}


def test_each_table_is_one_spec_that_the_notebook_shows_in_one_line():
    # the notebook spells no header, format or metric name: each table cell is one call of its spec
    twin = (ROOT / "ex3.py").read_text()
    assert "h.table(" not in twin and "record_rows(" not in twin
    shown = re.findall(r"display\(h\.(\w+)\.(?:show|render)\(", twin)
    assert len(shown) >= 20 and all(isinstance(getattr(h, name), h.Table) for name in shown)
    # no second spelling of the metric names beside the specs
    assert not [name for name in dir(h) if name.endswith("_METRICS")]


def test_a_table_spec_records_and_renders_its_rows_from_one_list_of_columns(monkeypatch):
    recorded = {}
    patch_everywhere(monkeypatch, "record_metrics", recorded.update)
    spec = h.Table(h.Column("d", "d"), h.Column("mse", "test MSE", ".3f", "ae.mse.d{d}"),
                   h.Column("seeds", "seeds", ".1f", "ae.mse.d{d}"), h.Column("hidden", metric="ae.hidden.d{d}"))
    text = spec.show([{"d": 4, "mse": 0.01234, "seeds": [1.0, 2.0], "hidden": 7}],
                     unrecorded=[{"d": "floor", "mse": 0.5, "seeds": None}]).data
    assert recorded == {"ae.mse.d4": 0.01234, "ae.mse.d4.seed0": 1.0, "ae.mse.d4.seed1": 2.0, "ae.hidden.d4": 7}
    lines = text.splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["d", "test MSE", "seeds"] and "hidden" not in text
    assert "| floor |" in lines[2] and "| 0.012 " in lines[3] and "1.0, 2.0" in lines[3]
    with pytest.raises(ValueError, match="recorded twice"):
        h.Table(h.Column("a", metric="x"), h.Column("a", metric="y"))


def test_every_recipe_row_says_how_its_settings_were_chosen():
    """The recipe table's rows are the stored studies' rows (chosen.how_chosen) and the one fixed model, each with
    its reason."""
    from ex3lib.chosen import how_chosen

    rows = h.recipe_rows()
    assert {r["model"] for r in rows} == {*how_chosen(), "train-on-generated classifier (section 5)"}
    assert all(r["chosen"] and r["recipe"] for r in rows)
