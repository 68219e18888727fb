"""The ``optimise`` command line: launch, status, export, forecast, dashboard, checkpoint."""

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from optimise.cli import main as _main

    return _main(argv)
