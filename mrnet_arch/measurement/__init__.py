"""Measuring and comparing models: model specs (``specs``), parameter and MAC counts (``complexity``), Y-PSNR/SSIM
scoring (``evaluation``) and the machine a figure ran on (``machine``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``, and its packages import each other without cycles; it never imports a command
(``tests/test_layers.py``).
"""
