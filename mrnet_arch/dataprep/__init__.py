"""Data preparation, the library behind ``mrnet prepare``: DIV2K and benchmark layouts (``prepare``), LMDBs
(``lmdb_store``), store verification (``store_check``) and the real-photo sets (``photo_sets``, ``debian_photos``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``, and its packages import each other without cycles; it never imports a command
(``tests/test_layers.py``).
"""
