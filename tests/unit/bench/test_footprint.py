"""The idle-memory table: readings from /proc, the import census from ``-X importtime`` lines."""

from __future__ import annotations

import os

from bench.footprint import Footprint, imported_packages, proc_status, table


def test_status_of_this_process_has_every_figure() -> None:
    status = proc_status(os.getpid())
    assert status["VmRSS"] >= status["RssAnon"] > 0
    assert status["Pss"] > 0
    assert status["Threads"] >= 1


def test_imports_are_counted_by_top_level_package() -> None:
    log = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       120 |        120 |   grpc._cython",
            "import time:        80 |        200 | grpc",
            "import time:        10 |         10 |     sqlalchemy.sql",
            '{"event": "serving"}',
        ]
    )
    assert imported_packages(log) == {"grpc": 2, "sqlalchemy": 1}


def test_table_totals_each_column() -> None:
    figures = {"VmRSS": 50.0, "RssAnon": 30.0, "RssFile": 20.0, "Pss": 40.0, "Threads": 4.0}
    rendered = table([Footprint("gateway", 1, figures), Footprint("users", 2, figures)])
    assert rendered.splitlines()[-1].split() == ["total", "100.0", "60.0", "40.0", "80.0", "8"]
