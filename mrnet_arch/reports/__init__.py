"""Reports and pictures: comparison crops (``crops``), paper-style figures (``figure``), the static comparison page
(``page``) and the option reference page (``options_doc``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``, and its packages import each other without cycles; it never imports a command
(``tests/test_layers.py``).
"""
