"""Files on disk: atomic writes, JSON and checksums (``files``), the one image reader and writer (``images``), and
weight files read safely, their arch config inferred and the network rebuilt from them (``weights``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``, and its packages import each other without cycles; it never imports a command
(``tests/test_layers.py``).
"""
