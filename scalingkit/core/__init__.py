"""Core: what one training run needs (FLOP accounting, hardware, the model, data, the trainer).

Nothing here imports the run store, the fitters, the studies or the CLI.
"""
