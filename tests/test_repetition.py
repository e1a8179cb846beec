"""Data-constrained scaling (Muennighoff et al. 2023): effective data and parameters."""

from __future__ import annotations

import numpy as np
import pytest

from scalingkit.fit.published import HOFFMANN_2022
from scalingkit.studies import repetition as rep


@pytest.mark.parametrize("unique", [1e6, 3e9, 1e12])
def test_one_epoch_is_worth_exactly_its_tokens(unique):
    assert rep.effective_tokens(unique, unique) == pytest.approx(unique)
    assert rep.effective_params(unique, unique) == pytest.approx(unique)


def test_effective_tokens_saturate_at_one_plus_r_star():
    u = 1e9
    d = rep.effective_tokens(u, np.array([2, 4, 16, 64, 1e4]) * u)
    assert np.all(np.diff(d) > 0)
    assert d[-1] == pytest.approx(u * (1 + rep.R_STAR_D), rel=1e-6)
    assert np.all(d <= u * (1 + rep.R_STAR_D) * (1 + 1e-12))


def test_few_epochs_are_nearly_as_good_as_new_data():
    # 4 epochs: D' / D = (1 + 15.4 (1 - exp(-3 / 15.4))) / 4, about 0.93.
    u = 1e9
    ratio = rep.effective_tokens(u, 4 * u) / (4 * u)
    assert ratio == pytest.approx((1 + 15.4 * (1 - np.exp(-3 / 15.4))) / 4)
    assert 0.92 < ratio < 0.94


def test_data_constrained_loss_reduces_to_chinchilla_at_one_epoch():
    n, u = 7e10, 1.4e12
    c = HOFFMANN_2022
    plain = c["E"] + c["A"] / n ** c["alpha"] + c["B"] / u ** c["beta"]
    assert rep.data_constrained_loss(n, u, 1.0) == pytest.approx(plain)
    losses = rep.data_constrained_loss(n, u, np.array([1.0, 4.0, 40.0, 400.0]))
    assert np.all(np.diff(losses) < 0)  # more epochs still help ...
    assert losses[-1] > c["E"] + c["A"] / n ** c["alpha"]  # ... but never remove the D term


@pytest.mark.parametrize(("func", "args", "match"), [
    (rep.effective_tokens, (1e9, 5e8), "at least unique_tokens"),
    (rep.effective_tokens, (-1.0, 5e8), "unique_tokens"),
    (rep.effective_params, (1e8, 1e9), "at least unique_params"),
    (rep.data_constrained_loss, (1e9, 1e9, 0.5), "epochs"),
    (rep.data_constrained_loss, (np.nan, 1e9, 2.0), "params"),
])
def test_rejects_bad_input(func, args, match):
    with pytest.raises(ValueError, match=match):
        func(*args)
