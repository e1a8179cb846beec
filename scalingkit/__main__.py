"""Allow ``python -m scalingkit``."""

from scalingkit.cli import main

raise SystemExit(main())
