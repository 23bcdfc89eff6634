"""The shared layer under the ``mrnet`` commands, the benchmarks and the tools: one place for each job.

Import the modules directly; this package imports nothing, so ``mrnet --help`` stays fast. What each module
owns is in its docstring and in ``docs/architecture.md`` ("Where is X"). The layer may import
``mrnet_arch.archs``, ``models``, ``data`` and ``project``; it never imports a command
(``tests/test_layers.py``).
"""
