"""The trainer: determinism, exact resume, divergence, schedules, budgets and the record."""

from __future__ import annotations

import json
import math

import pytest
import torch

from scalingkit.core import flops
from scalingkit.core.hardware import resolve_device, resolve_dtype
from scalingkit.core.models import GPTConfig
from scalingkit.core.train import (
    TrainConfig,
    TrainResult,
    learning_rate,
    tokens_for_flop_budget,
    train,
)

MODEL = GPTConfig(d_model=32, n_layer=2, n_head=2, n_ctx=32, vocab_size=256)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SCALINGKIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def config(**kw) -> TrainConfig:
    base = dict(model=MODEL, tokens=12 * 8 * 32, batch_size=8, lr=3e-3, warmup_tokens=512,
                eval_every=4, eval_tokens=256, log_every=2, device="cpu", seed=0)
    return TrainConfig(**{**base, **kw})


def losses(result: TrainResult) -> list[float]:
    return [p["loss"] for p in result.train_curve] + [p["loss"] for p in result.curve]


def test_same_seed_gives_identical_losses_and_other_seed_does_not():
    a = train(config(), progress=False)
    b = train(config(), progress=False)
    c = train(config(seed=1), progress=False)
    assert a.status == "done" and a.steps == 12
    assert losses(a) == losses(b)
    assert losses(a) != losses(c)
    assert a.final_loss < math.log(256)  # it learned something


def test_result_records_the_cpu_it_ran_on():
    """A re-run may demand bitwise equality only on the same CPU and thread count."""
    from scalingkit.core.hardware import cpu_identity, same_cpu

    record = train(config(tokens=2 * 8 * 32), progress=False).to_dict()
    assert {k: record[k] for k in cpu_identity()} == cpu_identity()
    assert record["cpu"] and record["torch_cpu_capability"]
    assert same_cpu(record, record["torch_threads"])
    assert not same_cpu(record, record["torch_threads"] + 1)
    assert not same_cpu({**record, "cpu_flags": ["sse4_2"]})
    assert not same_cpu({k: v for k, v in record.items() if k != "cpu"})  # an older record


class Interrupt(Exception):
    pass


def test_interrupt_and_resume_equals_an_uninterrupted_run(tmp_path):
    cfg = config(checkpoint_every=3)
    whole = train(cfg, run_dir=tmp_path / "whole", progress=False)

    def stop_at_step_8(info):
        if info["step"] >= 8:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg, run_dir=tmp_path / "cut", callback=stop_at_step_8, progress=False)
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert json.loads(ckpt["state"])["step"] == 6  # last checkpoint before the interrupt
    resumed = train(cfg, run_dir=tmp_path / "cut", progress=False)
    assert len(losses(resumed)) == len(losses(whole))
    for x, y in zip(losses(resumed), losses(whole), strict=True):
        assert abs(x - y) <= 1e-6
    assert resumed.tokens == whole.tokens and resumed.steps == whole.steps
    saved = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert saved["final_loss"] == resumed.final_loss


def test_resume_refuses_a_checkpoint_from_another_config(tmp_path):
    def stop(info):
        if info["step"] >= 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config(checkpoint_every=3), run_dir=tmp_path, callback=stop, progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(config(checkpoint_every=3, lr=1e-3), run_dir=tmp_path, progress=False)


@pytest.mark.parametrize("lr", [1e3, 1e6])
def test_huge_learning_rate_reports_divergence_without_raising(lr):
    result = train(config(lr=lr, warmup_tokens=0, grad_clip=0.0), progress=False)
    assert result.status == "diverged"
    assert "training loss" in result.message
    assert result.final_loss is None and result.final_bits_per_byte is None
    assert result.steps < 12 or not math.isfinite(result.train_curve[-1]["loss"]) or (
        result.train_curve[-1]["loss"] > 3 * math.log(256))
    json.dumps(result.to_dict())  # still a valid record


def test_result_record_is_complete_and_consistent():
    r = train(config(), progress=False)
    d = r.to_dict()
    for key in ("status", "message", "params_total", "params_non_embedding", "tokens",
                "flops_exact", "flops_6nd", "final_loss", "final_bits_per_byte", "curve",
                "train_curve", "wall_time_s", "tokens_per_s", "mfu", "epochs", "device"):
        assert key in d
    assert r.tokens == 12 * 8 * 32
    per_token = flops.training_flops_per_token(MODEL.shape)
    assert r.flops_exact == pytest.approx(per_token * r.tokens)
    assert r.flops_6nd == pytest.approx(6 * MODEL.n_params_non_embedding() * r.tokens)
    assert r.final_bits_per_byte == pytest.approx(r.final_loss / math.log(2))
    assert [p["step"] for p in r.curve] == [4, 8, 12]
    assert r.curve[-1]["loss"] == r.final_loss
    assert 0 < r.mfu <= 1 and r.tokens_per_s > 0 and r.wall_time_s > 0
    assert r.torch_threads == torch.get_num_threads() >= 1
    assert r.epochs == pytest.approx(r.tokens / 4_848_042, rel=0.05)
    assert TrainResult.from_dict(json.loads(json.dumps(d))) == r


def test_config_round_trips_through_json():
    cfg = config(schedule="cosine_fixed", horizon_tokens=10_000)
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({**cfg.to_dict(), "momentum": 0.9})


def test_schedules():
    cos = config(tokens=100_000, warmup_tokens=10_000, lr=1.0, min_lr_ratio=0.1)
    per_step = cos.tokens_per_step
    assert learning_rate(cos, 0) == pytest.approx(per_step / 10_000)
    assert learning_rate(cos, 10_000) == pytest.approx(1.0)
    end = cos.steps * per_step
    assert learning_rate(cos, end) == pytest.approx(0.1)
    assert learning_rate(cos, 2 * end) == pytest.approx(0.1)
    fixed = config(tokens=100_000, warmup_tokens=10_000, lr=1.0, schedule="cosine_fixed",
                   horizon_tokens=400_000)
    # At the same token count the long-horizon schedule has decayed less.
    for t in (30_000, 60_000, 90_000):
        assert learning_rate(fixed, t) > learning_rate(cos, t)
    const = config(tokens=100_000, warmup_tokens=0, lr=0.5, schedule="constant")
    assert all(learning_rate(const, t) == 0.5 for t in (0, 50_000, 99_000))


def test_tokens_for_flop_budget_spends_the_budget():
    budget = 1e12
    d = tokens_for_flop_budget(MODEL, budget)
    assert flops.training_flops(MODEL.shape, d) == pytest.approx(budget, rel=1e-4)
    d6 = tokens_for_flop_budget(MODEL, budget, convention="6nd")
    assert 6 * MODEL.n_params_non_embedding() * d6 == pytest.approx(budget, rel=1e-4)
    with pytest.raises(ValueError, match="convention"):
        tokens_for_flop_budget(MODEL, budget, convention="kaplan")
    with pytest.raises(ValueError, match="flop_budget"):
        tokens_for_flop_budget(MODEL, -1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(tokens=0), "tokens"),
        (dict(lr=-1.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(schedule="linear"), "unknown schedule"),
        (dict(schedule="cosine_fixed"), "horizon_tokens"),
        (dict(beta2=1.0), "beta2"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(eval_tokens=8), "eval_tokens"),
        (dict(min_lr_ratio=2.0), "min_lr_ratio"),
        (dict(model="gpt2"), "GPTConfig"),
    ],
)
def test_bad_train_configs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        config(**kwargs)


def test_vocabulary_mismatch_raises():
    bad = GPTConfig(d_model=32, n_layer=1, n_head=2, n_ctx=32, vocab_size=100)
    with pytest.raises(ValueError, match="vocab_size=100"):
        train(config(model=bad), progress=False)


@pytest.mark.parametrize("name", ["tpu", "cuda:banana", "quantum"])
def test_unknown_device_raises(name):
    with pytest.raises(ValueError, match="device"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_cuda_raises_clearly():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


def test_auto_device_and_dtype():
    dev = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else dev.type
    assert dev.type == expected
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("fp12", dev)


# ------------------------------------------- nested data subsets and early stopping


def test_train_tokens_limit_cycles_over_a_subset_and_overfits_it():
    limit = 100  # a few windows of n_ctx=32: the model memorises them
    full = train(config(tokens=60 * 8 * 32, eval_every=10, lr=1e-2), progress=False)
    small = train(config(tokens=60 * 8 * 32, eval_every=10, lr=1e-2, train_tokens_limit=limit),
                  progress=False)
    assert small.epochs == pytest.approx(small.tokens / limit)
    assert full.epochs < 1
    # Training on 100 tokens: training loss far below validation loss; not so on all.
    gap_small = small.final_loss - small.train_curve[-1]["loss"]
    gap_full = full.final_loss - full.train_curve[-1]["loss"]
    assert gap_small > 1.0 > gap_full


def test_best_loss_is_the_lowest_point_of_the_validation_curve():
    result = train(config(tokens=60 * 8 * 32, eval_every=5, lr=1e-2, train_tokens_limit=100),
                   progress=False)
    best = min(result.curve, key=lambda p: p["loss"])
    assert result.best_loss == best["loss"] and result.best_tokens == best["tokens"]
    assert result.best_loss < result.final_loss  # it overfitted after the best point


def test_train_tokens_limit_round_trips_and_is_absent_when_unset():
    assert "train_tokens_limit" not in config().to_dict()
    cfg = config(train_tokens_limit=1000)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["train_tokens_limit"] == 1000
    assert TrainConfig.from_dict(data) == cfg


@pytest.mark.parametrize("limit, match", [
    (32, "train_tokens_limit must be an integer >= 33"),
    (1.5e3, "train_tokens_limit must be an integer"),
])
def test_bad_train_tokens_limit_raises(limit, match):
    with pytest.raises(ValueError, match=match):
        config(train_tokens_limit=limit)


def test_train_tokens_limit_beyond_the_corpus_raises():
    with pytest.raises(ValueError, match="exceeds the .* training tokens"):
        train(config(train_tokens_limit=10**9), progress=False)


def test_cli_trains_and_reports(tmp_path, capsys):
    from scalingkit.cli import main

    code = main(["train", "--d-model", "32", "--n-layer", "1", "--n-ctx", "32",
                 "--tokens", "2048", "--batch-size", "8", "--device", "cpu", "--quiet",
                 "--eval-every", "0", "--run-dir", str(tmp_path / "run"), "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "done" and record["tokens"] == 2048
    assert (tmp_path / "run" / "result.json").exists() and (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--params", "1e5", "--d-model", "32", "--tokens", "100"], "either --params"),
        (["--d-model", "32", "--tokens", "100"], "both --d-model and --n-layer"),
        (["--d-model", "32", "--n-layer", "1", "--tokens", "4096", "--device", "tpu"], "device"),
    ],
)
def test_cli_reports_bad_input_as_errors(argv, match, capsys):
    from scalingkit.cli import main

    assert main(["train", *argv, "--quiet"]) == 2
    assert match in capsys.readouterr().err


def test_saved_model_loads_and_samples(tmp_path):
    from scalingkit.core.data import ByteTokenizer
    from scalingkit.core.models import sample_text
    from scalingkit.core.train import load_model

    train(config(tokens=4 * 8 * 32), run_dir=tmp_path, progress=False)
    model = load_model(tmp_path)
    text = sample_text(model, ByteTokenizer(), "ab", 20, seed=3)
    assert text.startswith("ab") and text == sample_text(model, ByteTokenizer(), "ab", 20, seed=3)
    with pytest.raises(ValueError, match="does not exist"):
        load_model(tmp_path / "elsewhere")
