# BasicSR plugin convention: python mrnet_arch/train.py -opt options/train_MRNet_x2.yml [--auto_resume]
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from mrnet_arch.entry import train  # noqa: E402

if __name__ == '__main__':
    train()
