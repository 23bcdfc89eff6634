"""BasicSR plugin convention: ``python mrnet_arch/test.py -opt options/test_MRNet_x2.yml`` (the same as
``mrnet test``)."""
from mrnet_arch.commands.pipelines import test

if __name__ == '__main__':
    test()
