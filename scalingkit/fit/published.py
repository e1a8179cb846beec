"""Published scaling-law fits, as reported (not computed here).

Units: E, A, B in nats/token (A and B multiply N^-alpha and D^-beta, with N in
parameters and D in tokens); exponents dimensionless.
"""

from __future__ import annotations

#: Hoffmann et al. (2022), Approach 3 fitted to all their runs (their eq. 10).
HOFFMANN_2022 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}

#: Besiroglu et al. (2024), refit of 240 of the Figure 4 points (Huber delta 1e-3).
BESIROGLU_2024 = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}

#: Their 95% bootstrap intervals (4000 resamples), low and high.
BESIROGLU_2024_CI = {
    "E": (1.769, 1.871), "A": (285.2, 743.6), "B": (1042.4, 5810.3),
    "alpha": (0.317, 0.373), "beta": (0.331, 0.415),
}

#: Their best objective (sum of Huber losses of log residuals) on the 240 points.
BESIROGLU_2024_OBJECTIVE = 1.0183e-3

#: Kaplan et al. (2020): compute-efficient allocation, N_opt ~ C^0.73, D_opt ~ C^0.27.
KAPLAN_2020_ALLOCATION = {"a": 0.73, "b": 0.27}
