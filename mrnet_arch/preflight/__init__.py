"""The checks of ``mrnet train`` and ``mrnet test`` that run before anything is created or renamed: the option file and
its keys (``checks``), the datasets (``dataset_checks``), the evaluation memory (``pipeline_memory``) and the error
type and message helpers they share (``check_report``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``, and its packages import each other without cycles; it never imports a command
(``tests/test_layers.py``).
"""
