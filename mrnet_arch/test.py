"""BasicSR plugin convention: ``python mrnet_arch/test.py -opt options/test_MRNet_x2.yml`` (the same as
``mrnet test``)."""
import sys

from mrnet_arch.cli import run_command
from mrnet_arch.commands.pipelines import test

if __name__ == '__main__':
    sys.exit(run_command('mrnet test', test, None))
