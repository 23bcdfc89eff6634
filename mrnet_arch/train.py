"""BasicSR plugin convention: ``python mrnet_arch/train.py -opt options/train_MRNet_x2.yml [--auto_resume]``
(the same as ``mrnet train``)."""
from mrnet_arch.commands.pipelines import train

if __name__ == '__main__':
    train()
