"""Settings of the mesh, declared once per scope and read from ``PORTICO_*`` environment variables.

``defaults`` holds ports and limits as plain constants; ``base`` the naming conventions; ``stores``,
``tokens``, ``peers``, ``events``, ``serve`` and ``telemetry`` the mesh-wide pieces that each process's
settings compose; ``reference`` lists every variable for ``docs/configuration.md``.
"""
