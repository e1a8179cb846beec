"""scalingkit: small, tested tools for neural scaling laws.

Modules
-------
flops
    Analytic FLOP and parameter accounting for decoder-only transformers
    (Kaplan et al. 2020; Hoffmann et al. 2022), the 6ND rule, MFU and unit
    conversions.
cli
    ``python -m scalingkit ...``: the command-line entry point.
"""

__version__ = "0.1.0"
