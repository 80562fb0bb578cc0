"""Programs the tests run as subprocesses, each with ``python -m harness.programs.<name>``."""
