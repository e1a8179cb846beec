"""scalingkit: small, tested tools for neural scaling laws.

The folder tree is the architecture; dependencies point one way,
``core <- runs <- studies <- cli``, and ``fit`` stands alone (numpy, scipy and
pandas only, no torch), so the estimators work anywhere. ``tests/test_layout.py``
keeps it so.

=====================  =========================================================
``core``               what one training run needs: ``flops`` (parameter and FLOP
                       counts, ``6ND``, PF-days), ``hardware`` (device, peak FLOP/s,
                       MFU, CPU identity, torch's FLOP counter), ``models`` (GPT),
                       ``data`` (tokenizers, corpora, samplers, a Markov source),
                       ``train`` (config, result, loop, checkpoints)
``runs``               many runs: ``store`` (the run store; its ``record``, ``claims``,
                       atomic ``files`` and ``export``), ``sweep`` (IsoFLOP
                       planning and running), ``frames`` (the one store-to-DataFrame
                       reader), ``optimum`` (compute-optimal N and D per budget),
                       ``provenance``; the executors (``executors``,
                       ``submitit_executor``, ``slurm``)
``fit``                scaling-law estimators (Chinchilla's three approaches,
                       Kaplan's forms; ``objective`` and ``optimum_rule`` their
                       parts), ``allocation`` (compute-optimal N, D under 6ND),
                       ``stats`` (percentile intervals, relative error),
                       ``points`` (points tables)
``studies``            one per paper or experiment: ``kaplan2020``, ``porian2024``,
                       ``entropy``, ``known_entropy``, ``noise_scale``,
                       ``forecasting``, ``repetition``, ``inference``
``plots``              the book's figures, one module per topic
``cli``                ``python -m scalingkit``: one module per subcommand
``tolerances``,        leaves: cross-CPU tolerances; chapter export for the book
``book``
=====================  =========================================================
"""

__version__ = "0.1.0"
