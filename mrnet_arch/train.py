"""BasicSR plugin convention: ``python mrnet_arch/train.py -opt options/train_MRNet_x2.yml [--auto_resume]``
(the same as ``mrnet train``)."""
import sys

from mrnet_arch.cli import run_command
from mrnet_arch.commands.pipelines import train

if __name__ == '__main__':
    sys.exit(run_command('mrnet train', train, None))
