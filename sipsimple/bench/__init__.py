"""The benchmark harness of sipsimple (``sipsimple bench WORKLOAD``); see :mod:`sipsimple.bench.runner`.

The package is also a subcommand module for :mod:`sipsimple.cli.main`
(``NAME``, ``HELP``, ``add_arguments``, ``run``), re-exported from the runner.
"""

from sipsimple.bench.runner import (
    COMMON_OPTIONS,
    DESCRIPTION,
    HELP,
    NAME,
    WORKLOADS,
    add_arguments,
    main,
    register_cli,
    run,
)

__all__ = ["NAME", "HELP", "DESCRIPTION", "COMMON_OPTIONS", "WORKLOADS", "add_arguments", "run",
           "register_cli", "main"]
