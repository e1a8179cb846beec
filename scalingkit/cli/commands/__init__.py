"""One module per ``python -m scalingkit`` subcommand (see :mod:`scalingkit.cli`)."""
