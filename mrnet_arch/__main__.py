import sys

from mrnet_arch.cli import main

sys.exit(main())
