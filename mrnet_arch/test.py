# BasicSR plugin convention: python mrnet_arch/test.py -opt options/test_MRNet_x2.yml
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from mrnet_arch.entry import test  # noqa: E402

if __name__ == '__main__':
    test()
