"""Import every `*_dataset.py` module of this folder so that its classes register in BasicSR's registries."""
from mrnet_arch.project import import_all

_modules = import_all(__name__, __file__, '_dataset.py')
