"""The hyperparameter study: learning rate, seeds, warmup, batch size and schedule across scale."""
