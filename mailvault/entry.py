"""The ``mailvault`` command's entry point, kept apart from the command line itself.

multiprocessing starts each worker process (the import's parsers, the PST reader) by running
the command's script again as the worker's main module, and that script imports its entry
point's module: pointed at ``mailvault.cli`` directly, every worker imported the whole
command line, SQLAlchemy and the use cases with it (1.1-1.4 s of CPU each, measured), only
to throw it away. Pointed here, a worker imports this file alone.
"""

from __future__ import annotations


def main() -> None:
    """Run the ``mailvault`` command."""
    # Imported here, not above, so that re-running the script costs a worker nothing.
    from mailvault.cli import main as run_command

    run_command()
