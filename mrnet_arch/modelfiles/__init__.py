"""Weight files and what travels with them: reading, config inference and saving (``weights``), model cards
(``model_card``), provenance (``provenance``) and Hugging Face Hub folders (``hf_repo``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``; it never imports a command (``tests/test_layers.py``).
"""
