"""``import mrnet_arch`` registers classes and changes nothing else in basicsr or torch."""
import subprocess
import sys
from os import path as osp

from _tiny import REPO, env

SNAPSHOT = r'''
import importlib.util, inspect, sys
spec = importlib.util.spec_from_file_location('standalone_compat', sys.argv[1])
compat = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compat)
compat.install_import_alias()   # the one change allowed: basicsr 1.4.2 cannot be imported without it

import basicsr, torch
import torch.serialization


def snapshot():
    seen = {}
    for name, module in list(sys.modules.items()):
        if module is None or not name.split('.')[0] in ('basicsr', 'torch'):
            continue
        for attr, value in list(vars(module).items()):
            seen[(name, attr)] = id(value)
            if inspect.isclass(value) and value.__module__ == name:
                for member, member_value in list(vars(value).items()):
                    seen[(name, attr, member)] = id(member_value)
    return seen


before = snapshot()
safe_globals = list(torch.serialization.get_safe_globals())
settings = (torch.get_default_dtype(), torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
            torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32)
import mrnet_arch
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY
after = snapshot()
replaced = sorted(str(k) for k, v in before.items() if k in after and after[k] != v)
print('checked', len(before), 'attributes')
print('replaced', replaced)
assert list(torch.serialization.get_safe_globals()) == safe_globals, 'weights_only allow-list changed'
assert settings == (torch.get_default_dtype(), torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
                    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32)
for name in ('MRNet', 'MultiScaleMRNet', 'MRM', 'ShuffleConv', 'Bicubic'):
    assert name in ARCH_REGISTRY, name
assert 'MRNetModel' in MODEL_REGISTRY and 'MultiScaleMRNetModel' in MODEL_REGISTRY
assert 'MultiScalePairedImageDataset' in DATASET_REGISTRY
assert not replaced, replaced
'''


def test_import_replaces_no_attribute_of_basicsr_or_torch(tmp_path):
    compat = osp.join(REPO, 'mrnet_arch', 'compat.py')
    proc = subprocess.run([sys.executable, '-c', SNAPSHOT, compat], env=env(str(tmp_path)), cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    checked = int(proc.stdout.split('checked ')[1].split()[0])
    assert checked > 10000  # every loaded basicsr and torch module and class was looked at
    assert 'replaced []' in proc.stdout


def test_entry_point_fixes_end_with_the_call():
    """The fixes of the train/test entry points are undone when the pipeline returns or fails."""
    import signal

    import basicsr.train
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from basicsr.utils import dist_util, misc
    from mrnet_arch import compat

    def current():
        return (basicsr.train.load_resume_state, basicsr.train.copy_opt_file, misc.mkdir_and_rename,
                dist_util._init_dist_pytorch, PairedImageDataset.__getitem__, basicsr.train.build_model,
                basicsr.train.create_train_val_dataloader, EnlargedSampler.__iter__, EnlargedSampler.set_epoch,
                signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1))

    originals = current()
    try:
        with compat.pipeline_fixes():
            assert basicsr.train.load_resume_state.__func__ is compat._Run.load_resume_state
            assert misc.mkdir_and_rename is compat.mkdir_and_rename
            assert PairedImageDataset.__getitem__ is not originals[4]
            assert EnlargedSampler.__iter__ is not originals[7]
            signal.signal(signal.SIGTERM, lambda *_: None)  # as MRNetModel does when it is built
            raise KeyError('pipeline failed')
    except KeyError:
        pass
    assert current() == originals
