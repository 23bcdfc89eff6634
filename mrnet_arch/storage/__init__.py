"""Files on disk: atomic writes, JSON and checksums (``files``), and the one image reader and writer (``images``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``; it never imports a command (``tests/test_layers.py``).
"""
