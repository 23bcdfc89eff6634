"""What the ``mrnet`` commands share on the command line: argparse options (``arguments``), paths and outputs
(``cli_paths``), optional packages (``optional``), other BasicSR plugins (``plugins``) and the one-run-per-
experiment lock (``run_lock``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``, and its packages import each other without cycles; it never imports a command
(``tests/test_layers.py``).
"""
