"""Entry point for `python -m infra`."""

from infra.cli import main

raise SystemExit(main())
