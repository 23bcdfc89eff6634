"""The ``mrnet`` subcommands, one module (or package) each, each with ``build_parser()`` and ``main(argv)``.

``mrnet_arch.cli`` dispatches to them. A command parses its options, calls the shared layer (the job packages:
``preflight``, ``commandline``, ``storage``, ``dataprep``, ``inference``, ``publishing``, ``measurement``,
``reports``) and prints; it never imports another command.
"""
