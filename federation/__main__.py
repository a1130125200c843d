"""``python -m federation`` is ``ratsfed``."""

from .cli.main import run

run()
