"""The checkpoint name of every model the full report trains, in both training precisions.

`python tools/cache_keys.py` prints whether they match tests/cache_keys.json; `--write` records them there.
A test fails when they differ, so a change to any training code (in whichever module) shows up as renamed
models; after a change of training code on purpose, record the new names with --write.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import helpers as h  # noqa: E402
from ex3lib import runtime  # noqa: E402

RECORD = ROOT / "tests" / "cache_keys.json"


def report_configs(recipe=h.FULL) -> dict:
    """{name: config} of every cached model of the report under `recipe` (the full report by default)."""
    r, out = recipe, {}
    for d in r.sweep_ds:  # section 1's comparisons, at its length
        for s in r.seeds:
            out[f"ae.d{d}.s{s}"] = h.section1_config(d, seed=s, recipe=r)
    for name in r.bottleneck_designs:  # every seed of every design: a superset of the designs trained at more seeds
        for s in r.seeds:
            out[f"ae.{name}.s{s}"] = h.section1_config(r.report_d, name, seed=s, recipe=r)
    ae = out["ae.report"] = h.ae_config(recipe=r)  # sections 3-5's, at its plateau
    out["classifier"] = h.eval_classifier_config(r)
    for s in r.gan_seeds:
        out[f"gan.k{r.report_noise_dim}.s{s}"] = h.gan_config(r.report_noise_dim, ae, seed=s, recipe=r)
    for k in r.noise_sweep:
        out[f"gan.k{k}.s0"] = h.gan_config(k, ae, recipe=r)
    for s in r.cgan_seeds:
        for w in (r.cgan_aux_weight, 0.0):
            out[f"cgan.aux{w:g}.s{s}"] = h.gan_config(r.report_noise_dim, ae, conditional=True, aux_weight=w, seed=s,
                                                      recipe=r)
    return out


def report_cache_keys() -> dict:
    """{precision.name: cache key} of report_configs() under each precision."""
    keys, before = {}, runtime.PRECISION
    try:
        for precision in h.PRECISIONS:
            runtime.PRECISION = precision
            keys.update({f"{precision}.{name}": h.cache_key(c) for name, c in report_configs().items()})
    finally:
        runtime.PRECISION = before
    return keys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"record the keys in {RECORD.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    keys = report_cache_keys()
    if args.write:
        RECORD.write_text(json.dumps(keys, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(keys)} keys in {RECORD}")
        return 0
    recorded = json.loads(RECORD.read_text())
    changed = sorted(k for k in keys.keys() | recorded.keys() if keys.get(k) != recorded.get(k))
    print(f"{len(keys)} keys, {len(changed)} differ from {RECORD.name}" + "".join(f"\n  {k}" for k in changed))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
