"""The laptop-scale recipe: monotone ladder, no-repeat sampler, lr rule, bracketing."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from scalingkit.core.data import EpochSampler
from scalingkit.core.ladder import ladder, ladder_rung, nearest_rung
from scalingkit.core.train import TrainConfig
from scalingkit.runs.bracket import (
    budget_table,
    edge_rungs,
    measured_tokens_per_param,
    run_bracketed,
)
from scalingkit.runs.spec import spec_dict, spec_from_dict
from scalingkit.runs.store import config_hash
from scalingkit.runs.sweep import GUTENBERG_BYTES, plan_sweep, preset
from scalingkit.studies.hparams.lr_rule import fit_lr_rule, lr_optima, read_lr_rule
from scalingkit.studies.hparams.plan import lr_grid_plan, recipe_plan, seed_plan, tokenizer_plan

RUNG = {"n_ctx": 128, "vocab_size": 256}
RULE = {"coef": 5e-3, "exponent": 0.5, "n_ref": 1e5, "n_min": 1e4, "n_max": 2e6}


def test_ladder_grows_monotonically_with_fixed_heads_and_aspect():
    rungs = ladder(3e6, **RUNG)
    sizes = [m.n_params() for m in rungs]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert all(m.d_model // m.n_head == 16 for m in rungs)
    assert all(b.n_layer >= a.n_layer and b.d_model > a.d_model for a, b in
               zip(rungs, rungs[1:], strict=False))
    assert min(m.n_layer for m in rungs) == 2
    wide = [m for m in rungs if m.d_model >= 128]
    assert all(abs(m.d_model / m.n_layer - 64) <= 32 for m in wide)  # depth is rounded


def test_nearest_rung_is_nearest_in_log():
    for k in (1, 3, 7):
        n = ladder_rung(k, **RUNG).n_params()
        assert nearest_rung(n, **RUNG) == k
        assert nearest_rung(n * 1.01, **RUNG) == k
    with pytest.raises(ValueError, match="n_target"):
        nearest_rung(-1.0, **RUNG)
    with pytest.raises(ValueError, match="rung index"):
        ladder_rung(0, **RUNG)


def test_epoch_sampler_never_repeats_a_token_within_a_pass_and_resumes():
    tokens = np.arange(10 * 17 + 5)
    sampler = EpochSampler(tokens, batch_size=2, n_ctx=16, seed=3)
    seen = []
    for _ in range(5):
        x, y = sampler.sample()
        seen.extend(x.flatten().tolist() + y[:, -1].tolist())
    assert len(seen) == len(set(seen)) == 10 * 17  # every window once, no token twice
    state = sampler.state()
    after = sampler.sample()
    twin = EpochSampler(tokens, batch_size=2, n_ctx=16, seed=3)
    twin.set_state(state)
    assert all(torch.equal(a, b) for a, b in zip(after, twin.sample(), strict=True))
    assert sampler.passes == pytest.approx(1.2)


def test_sampler_field_leaves_old_run_ids_unchanged():
    model = ladder_rung(2, **RUNG)
    plain = TrainConfig(model=model).to_dict()
    assert "sampler" not in plain
    assert TrainConfig(model=model, sampler="epoch").to_dict()["sampler"] == "epoch"
    with pytest.raises(ValueError, match="unknown sampler"):
        TrainConfig(model=model, sampler="shuffle")


def test_laptop_plan_meets_the_design():
    spec = preset("laptop", lr_rule=RULE)
    plan = plan_sweep(spec)
    frame = plan.to_frame()
    assert spec.corpus_tokens == GUTENBERG_BYTES
    assert frame["steps"].min() >= 150 and frame["epochs"].max() <= 1.0
    assert np.log10(max(spec.budgets) / min(spec.budgets)) >= 1.5
    for _, runs in frame.groupby("budget"):
        assert list(runs["params"]) == sorted(runs["params"])
        assert (runs["n_layer"] >= 2).all()
    lrs = [r.config["lr"] for r in plan.runs]
    assert lrs == pytest.approx([spec.lr_for(r.params, r.budget) for r in plan.runs])
    assert all(r.config["sampler"] == "epoch" for r in plan.runs)


def test_lr_rule_refuses_sizes_it_was_not_measured_on():
    spec = preset("laptop", lr_rule={**RULE, "n_max": 1e5})
    plan = plan_sweep(spec)
    assert max(r.params for r in plan.runs) <= 1e5
    assert any("outside the lr rule's sizes" in d.reason for d in plan.dropped)
    with pytest.raises(ValueError, match="lr_rule lacks"):
        preset("laptop", lr_rule={"coef": 1.0})


def test_spec_round_trips_and_old_specs_keep_their_keys():
    spec = preset("laptop", lr_rule=RULE, centre_tokens_per_param=30.0,
                  extra_rungs={1e12: (1, 2)})
    assert spec_from_dict(spec_dict(spec)) == spec
    old = spec_dict(preset("reference"))
    assert not {"ladder", "sampler", "lr_rule", "extra_rungs"} & set(old)


def test_recentring_puts_the_measured_tokens_per_param_in_the_middle():
    spec = preset("laptop", lr_rule=RULE, centre_tokens_per_param=40.0)
    for budget in spec.budgets:
        k_c = nearest_rung(spec.centre(budget), **RUNG)
        assert k_c in spec.rungs(budget)  # the window slides up only where it hits rung 1
        n = ladder_rung(k_c, **RUNG).n_params()
        ratio = budget / (spec.flops_per_token(n) * n)
        assert 40 / 4 < ratio < 40 * 4  # within one rung of the target on a coarse ladder


def _valley(optimum: float):
    """A stand-in trainer: loss is a parabola in ln N with its minimum at ``optimum``."""
    def train(config, *, run_dir=None, progress=False):
        n = TrainConfig.from_dict(config).model.n_params()
        return {"status": "done", "final_loss": 2.0 + 0.05 * math.log(n / optimum) ** 2,
                "epochs": 0.01}
    return train


def test_bracketing_adds_rungs_until_the_optimum_is_inside(tmp_path):
    spec = preset("laptop", lr_rule=RULE, budgets=(1e12, 3e12), sizes_per_budget=3,
                  centre_tokens_per_param=5.0)  # centred far too large
    opt = ladder_rung(2, **RUNG).n_params() * 1.1
    lines = []
    final, table = run_bracketed(spec, str(tmp_path / "s"), pilot=False, log=lines.append,
                                 max_extra=6, trainer=_valley(opt), progress=False)
    assert table["bracketed"].all()
    assert all(below >= 1 for below, _ in final.extra_rungs.values())
    assert any("adding a rung below" in line for line in lines)
    capped, _ = run_bracketed(spec, str(tmp_path / "s"), pilot=False, log=lines.append,
                              max_extra=1, trainer=_valley(opt), progress=False)
    assert "no rung can be added below" in lines[-1]


def test_pilot_recentres_the_sweep(tmp_path):
    spec = preset("laptop", lr_rule=RULE, budgets=(1e12, 3e12, 1e13), sizes_per_budget=3)
    opt = ladder_rung(3, **RUNG).n_params()
    lines = []
    final, table = run_bracketed(spec, str(tmp_path / "s"), log=lines.append,
                                 trainer=_valley(opt), progress=False)
    assert lines[0].startswith("pilot:") or any(x.startswith("pilot:") for x in lines)
    assert final.centre_tokens_per_param is not None and table["bracketed"].all()


def test_edge_rungs_stops_at_its_cap():
    spec = preset("laptop", budgets=(1e12,), extra_rungs={1e12: (0, 3)})
    table = pd.DataFrame([{"budget": 1e12, "bracketed": False, "side": "above",
                           "reason": "lowest loss at the largest size"}])
    same, notes = edge_rungs(spec, table, max_extra=3)
    assert same == spec and "no rung can be added" in notes[0]


def test_pilot_ratio_needs_a_bracketed_budget():
    table = pd.DataFrame([{"budget": 1e12, "bracketed": False, "tokens_per_param": np.nan,
                           "reason": "lowest loss at the smallest size"}])
    with pytest.raises(ValueError, match="no budget of the pilot is bracketed"):
        measured_tokens_per_param(table)


def test_budget_table_flags_edges():
    frame = pd.DataFrame({"budget": [1e12] * 3, "params": [1e4, 2e4, 4e4],
                          "tokens": [1e6, 5e5, 2.5e5], "loss": [2.0, 2.1, 2.2],
                          "flops_exact": [1e12] * 3})
    row = budget_table(frame).iloc[0]
    assert not row["bracketed"] and row["side"] == "below"


def _grid_frame(true_lr):
    rows = []
    for budget, sizes in ((1e12, (1e4, 3e4, 1e5)), (1e13, (3e4, 1e5, 3e5))):
        for n in sizes:
            for lr in 1e-3 * 2.0 ** np.arange(6):
                best = true_lr(n, budget)
                rows.append({"budget": budget, "params": n, "lr": lr,
                             "loss": 2 + 0.1 * np.log(lr / best) ** 2})
    return pd.DataFrame(rows)


def test_lr_rule_recovers_a_known_power_law():
    frame = _grid_frame(lambda n, c: 8e-3 * (n / 3e4) ** -0.4 * (c / 1e12) ** -0.3)
    optima = lr_optima(frame)
    result = fit_lr_rule(optima, n_boot=200)
    rule = result["rule"]
    assert rule["exponent"] == pytest.approx(0.4, abs=1e-6)
    assert rule["budget_exponent"] == pytest.approx(0.3, abs=1e-6)
    lo, hi = result["exponent_ci"]
    assert lo <= 0.4 <= hi
    # a size-only fit reads the budget's effect as a steeper fall with size
    assert result["size_only"]["exponent"] != pytest.approx(0.4, abs=0.01)
    spec = preset("laptop", lr_rule=rule)
    assert spec.lr_for(3e4, 1e12) == pytest.approx(8e-3, rel=1e-6)
    with pytest.raises(ValueError, match="depends on the budget"):
        spec.lr_for(3e4)


def test_lr_rule_reports_cells_at_the_edge_of_the_grid():
    frame = _grid_frame(lambda n, c: 1e-1)  # every best rate beyond the grid
    optima = lr_optima(frame)
    assert (optima["reason"] == "lowest loss at the largest rate tried").all()
    with pytest.raises(ValueError, match="widen the grid"):
        fit_lr_rule(optima)


def test_read_lr_rule_names_the_file(tmp_path):
    bad = tmp_path / "rule.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="is not an lr rule file"):
        read_lr_rule(str(bad))
    with pytest.raises(ValueError, match="does not exist"):
        read_lr_rule(str(tmp_path / "missing.json"))


def test_study_plans():
    grid = lr_grid_plan()
    assert len({r.config["lr"] for r in grid.runs}) >= 5
    assert len(grid.runs) >= 5 * 5 * 2 and not grid.dropped
    spec = preset("laptop", lr_rule=RULE)
    seeds = seed_plan(spec, 1e12, [2, 3, 4, 5, 6])
    assert sorted({r.config["seed"] for r in seeds.runs}) == [1, 2]
    horizon = recipe_plan("horizon", spec, 1e12, [3])
    assert sorted(r.config["horizon_tokens"] / r.tokens for r in horizon.runs) == pytest.approx(
        [1.5, 2.0, 4.0], rel=1e-3)
    same = tokenizer_plan(preset("laptop", lr_rule={**RULE, "budget_exponent": 0.3,
                                                    "c_ref": 1e12, "c_min": 1e12,
                                                    "c_max": 5e12}),
                          3e12, [2, 3], tokenizers=("byte",))
    assert [r.config["lr"] for r in same.runs] == pytest.approx(
        [same.spec.lr_for(r.params, 3e12) for r in same.runs])
    seeded = tokenizer_plan(same.spec, 3e12, [2, 3], tokenizers=("byte",), seeds=(0, 1, 2))
    assert len(seeded.runs) == 6 and sorted({r.config["seed"] for r in seeded.runs}) == [0, 1, 2]
    assert {config_hash(r.config) for r in same.runs} <= {config_hash(r.config)
                                                          for r in seeded.runs}  # seed 0: same
    warm = recipe_plan("warmup", replace(spec), 1e12, [3], [0.0, 0.2])
    assert sorted(r.config["warmup_tokens"] / r.tokens for r in warm.runs) == pytest.approx(
        [0.0, 0.2], abs=1e-3)
    batch = recipe_plan("batch", spec, 1e12, [3], [8, 16, 32])
    assert sorted(r.config["batch_size"] for r in batch.runs) == [8, 32]  # 16: the sweep's
    lr = recipe_plan("lr", spec, 1e12, [3], [0.5, 1.0, 2.0])
    rule = spec.lr_for(lr.runs[0].params, 1e12)
    assert sorted(r.config["lr"] / rule for r in lr.runs) == pytest.approx([0.5, 2.0])


def test_export_command_copies_records_and_refuses_a_full_folder(tmp_path, capsys):
    from conftest import one_line_error

    from scalingkit.cli import main
    from scalingkit.runs.sweep import run_sweep

    spec = preset("laptop", lr_rule=RULE, budgets=(1e12,), sizes_per_budget=3)
    run_sweep(plan_sweep(spec), tmp_path / "s", trainer=_valley(5e4), progress=False)
    (tmp_path / "s" / "runs").joinpath("stray.pt").write_text("weights")
    assert main(["export", str(tmp_path / "s"), str(tmp_path / "e")]) == 0
    assert "exported 3 run records" in capsys.readouterr().out
    assert len(list((tmp_path / "e" / "runs").glob("*/record.json"))) == 3
    assert not list((tmp_path / "e").rglob("*.pt"))
    one_line_error(capsys, ["export", str(tmp_path / "s"), str(tmp_path / "e")], 2, "empty")
    assert main(["export", str(tmp_path / "s"), str(tmp_path / "e"), "--merge"]) == 0


def test_bracketing_deepens_a_valley_shallower_than_the_noise(tmp_path):
    spec = preset("laptop", lr_rule=RULE, budgets=(3e12,), sizes_per_budget=3)
    k_c = nearest_rung(spec.centre(3e12), **RUNG)
    opt = ladder_rung(k_c, **RUNG).n_params()
    shallow, table = run_bracketed(spec, str(tmp_path / "a"), pilot=False, log=print,
                                   trainer=_valley(opt), progress=False)
    assert table["bracketed"].all() and not shallow.extra_rungs
    lines = []
    deep, table = run_bracketed(spec, str(tmp_path / "b"), pilot=False, log=lines.append,
                                min_depth=0.05, trainer=_valley(opt), progress=False)
    assert table["bracketed"].all() and table["depth"].min() >= 0.05
    assert sum(sum(v) for v in deep.extra_rungs.values()) >= 1
    assert any("wall rises only" in line for line in lines)


@pytest.mark.parametrize(("changes", "match"), [
    ({"init_std": -1.0}, "init_std"), ({"min_layers": 0}, "min_layers"),
    ({"ladder": "zigzag"}, "ladder"), ({"sampler": "shuffle"}, "sampler"),
    ({"centre_tokens_per_param": 0.0}, "centre_tokens_per_param"),
    ({"extra_rungs": {1e12: (-1, 0)}}, "extra_rungs"),
    ({"lr_rule": {**RULE, "budget_exponent": 0.3}}, "not all of"),
])
def test_laptop_spec_refuses_bad_fields(changes, match):
    with pytest.raises(ValueError, match=match):
        preset("laptop", **changes)


def test_cli_tokens_per_param_centres_the_plan(tmp_path, capsys):
    from scalingkit.cli import main

    rule_file = "book/data/hparams/lr_rule.json"
    args = ["sweep", "--preset", "laptop", "--lr-rule", rule_file, "--budgets", "2.38e12",
            "--out", str(tmp_path / "x"), "--dry-run"]
    sizes = {}
    for ratio in (None, 5.0):
        extra = [] if ratio is None else ["--tokens-per-param", str(ratio)]
        assert main(args + extra) == 0
        lines = capsys.readouterr().out.splitlines()
        header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["budget"])
        sizes[ratio] = [int(line.split()[2]) for line in lines[header + 1:]]
    spec = preset("laptop", lr_rule=read_lr_rule(rule_file), budgets=(2.38e12,),
                  centre_tokens_per_param=5.0)
    assert sizes[5.0] == [r.params for r in plan_sweep(spec).runs]
    assert sizes[5.0] != sizes[None]


@pytest.mark.parametrize("args,match", [
    (["--preset", "laptop", "--tokens-per-param", "-3"], "--tokens-per-param must be a positive"),
    (["--preset", "quick", "--tokens-per-param", "20"], "needs a monotone-ladder preset"),
])
def test_cli_tokens_per_param_refuses_bad_input(tmp_path, capsys, args, match):
    from scalingkit.cli import main

    assert main(["sweep", *args, "--out", str(tmp_path / "x"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_cli_seeds_apply_to_seed_and_tokenizer_parts_only(tmp_path, capsys):
    from scalingkit.cli import main

    args = ["hparams", "run", "batch", "--lr-rule", "book/data/hparams/lr_rule.json",
            "--budget", "1e12", "--rungs", "3", "--seeds", "1", "--out", str(tmp_path / "x")]
    assert main(args) == 2
    assert "--seeds does not apply to part 'batch'" in capsys.readouterr().err
