"""How closely a result re-derived on another CPU must match the committed one.

The same code gives slightly different floats on different instruction sets:
numpy, OpenBLAS and torch pick AVX-512, AVX2 or SSE kernels at run time, which
sum in other orders. A closed-form fit moves in its last digits; an iterative
fit of a flat objective can stop elsewhere along the flat direction (its
objective and predictions agree long before its parameters do); and a training
run amplifies the first differing bit step by step.

Each tolerance here is set from a measurement: ``python benchmarks/cross_cpu.py``
re-derives every committed result under three instruction paths of one machine
(native AVX-512, AVX2, SSE; see that script) and compares them with the values
committed from another machine (an AMD EPYC with AVX2 and no AVX-512). The
comments give the largest deviation it measured (Intel Xeon with AVX-512,
2026-11-30). Tolerances are that spread times a margin of about 10 to 100,
since three paths of one machine do not cover every CPU; checks compare
identified quantities (objectives, predictions, losses), never the flat
directions of a fit.
"""

from __future__ import annotations

__all__ = [
    "CLOSED_FORM_RTOL",
    "FIT_EXPONENT_RTOL",
    "FIT_OBJECTIVE_RTOL",
    "FIT_PREDICTION_RTOL",
    "RETRAIN_ATOL",
    "SAME_CPU_RETRAIN_ATOL",
]

#: Closed-form fits (log-log least squares: Kaplan's L(N), L(D), their ratio; the
#: learning-rate rule from its grid's parabola vertices, bootstrap interval included).
#: Measured: 1.8e-14 relative (D_c of L(D)); 1.9e-14 (the lr rule's exponent interval,
#: this machine's three paths, the rule committed from this machine).
CLOSED_FORM_RTOL = 1e-12

#: Objective value of an iterative fit (L-BFGS from a grid of starts, then polished).
#: Measured: 1.4e-10 relative (Kaplan's L(N, D)), 8.5e-15 (Chinchilla's 240 points).
FIT_OBJECTIVE_RTOL = 1e-8

#: Predictions of an iterative fit at its data points or at a target (relative).
#: Measured: 6.8e-7 (Kaplan's L(N, D) at its 19 points, while its N_c moved by 3.3e-5),
#: 1.8e-9 (Approach 3's predicted loss in ``prediction.json``); 2.9e-8 (the word source's
#: law at its 36 runs, ``known_entropy_z12.json``), 2.3e-8 (``prediction_words.json``);
#: 7.7e-9 and 4.0e-9 (``known_entropy_z14.json`` and ``prediction_words_z14.json``);
#: 4.0e-7 and 3.7e-8 (``known_entropy.json`` at its 35 runs and
#: ``prediction_words_z18.json``, words:z18).
FIT_PREDICTION_RTOL = 1e-5

#: An allocation exponent ``a`` derived from an iterative fit (Approach 3's
#: ``beta / (alpha + beta)``), or from parabola vertices (closed form).
#: Measured: 4.1e-6 relative (Approach 3 on the Porian "kaplan" rung, Kaplan's count);
#: 1e-15 or less for the parabola-based methods.
FIT_EXPONENT_RTOL = 1e-4

#: Final loss of a committed run re-trained on another CPU (nats/token), same thread count.
#: Measured on the smallest run of each committed store: 7.9e-3 for the reference sweep's
#: (46,368 params, 1e12 FLOP: 2.1554 committed, 2.1633 AVX-512, 2.1554 AVX2, 2.1539 SSE),
#: 9.3e-6 or less for the other six. A trajectory that differs in its first bit drifts
#: like a run with another seed, so the margin here is about 4x, not 100x.
RETRAIN_ATOL = 0.03

#: Final loss of a run re-trained on the same CPU model, SIMD flags, torch kernel set
#: and thread count (nats/token): bitwise equal in every measurement; 1e-6 leaves room
#: for the printed precision of JSON.
SAME_CPU_RETRAIN_ATOL = 1e-6
