"""The gradient noise scale: unbiased norm algebra, a problem with known covariance, a GPT."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scalingkit.core.models import GPT, GPTConfig
from scalingkit.studies.noise_scale import (
    NoiseScale,
    estimate_noise_scale,
    fit_critical_batch,
    gpt_noise_scale,
    noise_scale_from_norms,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest (and without contention) on one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("grad_sq, trace_cov, b_small, b_big", [
    (1.0, 10.0, 1, 2), (0.3, 50.0, 4, 64), (2.5, 0.1, 8, 1024),
])
def test_norm_algebra_inverts_the_expected_squared_norms(grad_sq, trace_cov, b_small, b_big):
    sq_small = grad_sq + trace_cov / b_small  # E|G_B|^2 = |G|^2 + tr(Sigma)/B
    sq_big = grad_sq + trace_cov / b_big
    g2, tr = noise_scale_from_norms(sq_small, sq_big, b_small, b_big)
    assert g2 == pytest.approx(grad_sq, rel=1e-12)
    assert tr == pytest.approx(trace_cov, rel=1e-12)


def linear_regression_problem(p: int, sigma: float, offset: np.ndarray, seed: int):
    """Squared loss 0.5 (x.w - y)^2 with x ~ N(0, I), y = x.w* + N(0, sigma^2), w - w* = d.

    The per-example gradient is x (x.d - eps): its mean is G = d and, by Isserlis'
    theorem, its covariance is Sigma = (|d|^2 + sigma^2) I + d d^T, so
    tr(Sigma) = p (|d|^2 + sigma^2) + |d|^2 and B_simple = tr(Sigma) / |d|^2.
    """
    rng = np.random.default_rng(seed)
    d = np.asarray(offset, dtype=float)

    def sampler(b: int):
        def small_batch_grad():
            x = rng.standard_normal((b, p))
            eps = sigma * rng.standard_normal(b)
            r = x @ d - eps  # residuals, (b,)
            return torch.from_numpy((x * r[:, None]).mean(0)), float(0.5 * (r**2).mean())
        return small_batch_grad

    d2 = float(d @ d)
    truth = {"grad_sq": d2, "trace_cov": p * (d2 + sigma**2) + d2}
    return sampler, truth


@pytest.mark.parametrize("p, sigma, scale, b_small, b_big", [
    (10, 2.0, 1.0, 2, 32),    # B_simple = 51
    (40, 0.5, 0.5, 4, 64),    # B_simple = 41 (0.25 + 0.25) / 0.25 + 1 = 81
    (5, 3.0, 2.0, 1, 16),     # noise-dominated small problem
])
def test_estimator_recovers_a_known_gradient_covariance(p, sigma, scale, b_small, b_big):
    rng = np.random.default_rng(0)
    offset = rng.normal(size=p)
    offset *= scale / np.linalg.norm(offset)
    sampler, truth = linear_regression_problem(p, sigma, offset, seed=1)
    est = estimate_noise_scale(sampler(b_small), b_small=b_small, b_big=b_big, repeats=600)
    assert est.grad_sq == pytest.approx(truth["grad_sq"], rel=0.1)
    assert est.trace_cov == pytest.approx(truth["trace_cov"], rel=0.05)
    assert est.b_simple == pytest.approx(truth["trace_cov"] / truth["grad_sq"], rel=0.12)
    assert (est.b_small, est.b_big, est.repeats) == (b_small, b_big, 600)


def test_noise_scale_grows_when_the_gradient_shrinks():
    """Closer to the optimum the signal |G|^2 falls and B_simple rises (the paper's point)."""
    values = []
    for scale in (2.0, 0.5, 0.125):
        offset = np.full(8, scale / math.sqrt(8))
        sampler, _ = linear_regression_problem(8, 1.0, offset, seed=2)
        values.append(estimate_noise_scale(sampler(2), b_small=2, b_big=32,
                                           repeats=300).b_simple)
    assert values[0] < values[1] < values[2]


def test_b_simple_is_nan_when_the_signal_is_not_estimated_positive():
    assert math.isnan(NoiseScale(grad_sq=-0.1, trace_cov=3.0, b_small=1, b_big=2,
                                 repeats=1).b_simple)
    assert NoiseScale(2.0, 3.0, 1, 2, 1).to_dict()["b_simple"] == 1.5


@pytest.mark.parametrize("args, match", [
    ((1.0, 1.0, 4, 4), "b_small must be smaller than b_big"),
    ((1.0, 1.0, 0, 4), "b_small must be a positive integer"),
    ((1.0, 1.0, 2, 4.0), "b_big must be a positive integer"),
    ((-1.0, 1.0, 2, 4), "sq_small must be a finite, non-negative"),
    ((1.0, math.nan, 2, 4), "sq_big must be a finite, non-negative"),
])
def test_bad_norm_inputs_raise(args, match):
    with pytest.raises(ValueError, match=match):
        noise_scale_from_norms(*args)


@pytest.mark.parametrize("kwargs, match", [
    ({"b_small": 3, "b_big": 8}, "must be a multiple of b_small"),
    ({"b_small": 2, "b_big": 8, "repeats": 0}, "repeats must be a positive integer"),
    ({"b_small": 8, "b_big": 2}, "b_small must be smaller than b_big"),
])
def test_bad_estimator_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        estimate_noise_scale(lambda: (torch.zeros(1), 0.0), **kwargs)


def test_gpt_noise_scale_leaves_the_model_alone_and_is_reproducible():
    cfg = GPTConfig(d_model=32, n_layer=1, n_head=2, n_ctx=16, vocab_size=256)
    model = GPT(cfg, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokens = np.random.default_rng(0).integers(0, 256, size=5000).astype(np.uint16)
    rng_state = torch.get_rng_state()
    a = gpt_noise_scale(model, tokens, n_ctx=16, b_small=2, b_big=8, repeats=2, seed=3)
    b = gpt_noise_scale(model, tokens, n_ctx=16, b_small=2, b_big=8, repeats=2, seed=3)
    assert torch.equal(rng_state, torch.get_rng_state())  # the global RNG is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert a == b
    assert a.trace_cov > 0 and math.isfinite(a.grad_sq)
    assert a.loss == pytest.approx(math.log(256), rel=0.05)  # an untrained model guesses


@pytest.mark.parametrize("b_star, alpha_b", [(2e8, 0.21), (5e3, 0.5)])
def test_fit_critical_batch_recovers_kaplans_form(b_star, alpha_b):
    loss = np.array([4.0, 3.0, 2.5, 2.0, 1.8])
    fitted = fit_critical_batch(loss, b_star / loss ** (1 / alpha_b))
    assert fitted == pytest.approx((b_star, alpha_b), rel=1e-9)


def test_fit_critical_batch_refuses_a_noise_scale_that_shrinks_with_the_loss():
    loss = np.array([4.0, 3.0, 2.0])
    with pytest.raises(ValueError, match="does not grow as the loss falls"):
        fit_critical_batch(loss, loss**2)
