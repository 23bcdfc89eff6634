"""Running an SR network on images: ``Upscaler`` (``upscaler``), the fast path (``fast``), precisions (``precision``),
tiles (``tiling``), the memory budget (``memory``) and devices (``device``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``, and its packages import each other without cycles; it never imports a command
(``tests/test_layers.py``).
"""
