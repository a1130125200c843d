"""The ``ratsfed`` command line: one module per command group, ``main`` dispatches."""
