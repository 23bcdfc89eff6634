"""What travels with weights when they are shared: model cards (``model_card``), where the weights come from
(``provenance``) and Hugging Face Hub folders (``hf_repo``).

Part of the shared layer under the ``mrnet`` commands, the benchmarks and the tools. Import the modules directly;
this package imports nothing. The layer may import ``mrnet_arch.archs``, ``models``, ``data``, ``errors`` and
``project``, and its packages import each other without cycles; it never imports a command
(``tests/test_layers.py``).
"""
