"""``python -m mrnet_arch``: the ``mrnet`` command."""
import sys

from mrnet_arch.cli import main

sys.exit(main())
