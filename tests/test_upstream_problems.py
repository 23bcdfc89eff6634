"""The problems of the installed basicsr that ``mrnet_arch.compat`` works around are still there.

Each test shows one problem in basicsr's own function (the one ``compat.pipeline_fixes`` replaces during
``mrnet train`` / ``mrnet test``, or the import that ``compat.install_import_alias`` serves). A test that fails
means the installed basicsr fixed the problem: drop the replacement (see the table in docs/architecture.md) and
this test with it.
"""
import inspect
import os
import shutil
import sys
import time

import pytest
import torch
import yaml

import mrnet_arch  # noqa: F401  (the import alias, before any basicsr import)


def _state(path, it):
    torch.save({'iter': it, 'epoch': 0, 'optimizers': [], 'schedulers': []}, path)


def test_load_resume_state_reads_cwd_picks_cut_short_states_and_maps_onto_cuda(tmp_path, monkeypatch):
    """basicsr's ``load_resume_state`` looks for ``--auto_resume`` states under ``experiments/<name>`` of the
    working directory (not ``path:training_states``), takes the highest-numbered ``.state`` even when it is cut
    short, and maps the state onto ``torch.cuda.current_device()``, which fails without CUDA (replaced by
    ``compat.load_resume_state``)."""
    import basicsr.train
    elsewhere = tmp_path / 'elsewhere' / 'training_states'  # where the options say the states are
    elsewhere.mkdir(parents=True)
    _state(elsewhere / '6.state', 6)
    here = tmp_path / 'cwd' / 'experiments' / 'run' / 'training_states'
    here.mkdir(parents=True)
    _state(here / '2.state', 2)
    (here / '4.state').write_bytes(b'cut short')
    monkeypatch.chdir(tmp_path / 'cwd')
    opt = {'name': 'run', 'auto_resume': True, 'num_gpu': 0,
           'path': {'training_states': str(elsewhere), 'resume_state': None}}
    with pytest.raises(Exception):  # the cut-short file (or, without CUDA, torch.cuda) fails the load
        basicsr.train.load_resume_state(opt)
    assert opt['path']['resume_state'] == os.path.join('experiments', 'run', 'training_states', '4.state')
    assert 'torch.cuda.current_device()' in inspect.getsource(basicsr.train.load_resume_state)
    if not torch.cuda.is_available():
        opt = {'name': 'run', 'auto_resume': False, 'num_gpu': 0, 'path': {'resume_state': str(here / '2.state')}}
        with pytest.raises((AssertionError, RuntimeError)):  # torch.cuda.current_device() on a CPU-only machine
            basicsr.train.load_resume_state(opt)


def test_init_dist_pytorch_needs_cuda(monkeypatch):
    """basicsr's ``_init_dist_pytorch`` calls ``torch.cuda.set_device`` (a division by the GPU count) whatever the
    backend, so ``--launcher pytorch`` fails without GPUs (replaced by ``compat._init_dist_pytorch``: gloo)."""
    from basicsr.utils import dist_util
    source = inspect.getsource(dist_util._init_dist_pytorch)
    assert 'torch.cuda.set_device(rank % num_gpus)' in source and 'gloo' not in source
    if torch.cuda.device_count() == 0:
        monkeypatch.setenv('RANK', '0')
        with pytest.raises(ZeroDivisionError):  # before any process group is made
            dist_util._init_dist_pytorch('gloo')


def test_copy_opt_file_overwrites_the_earlier_copy(tmp_path):
    """basicsr's ``copy_opt_file`` overwrites ``<experiment>/<opt>.yml`` on every start (a resume loses the
    options the run started with), and fails when ``-opt`` is that copy (replaced by ``compat.copy_opt_file``)."""
    import basicsr.train
    exp = tmp_path / 'exp'
    exp.mkdir()
    opt = tmp_path / 'opt.yml'
    opt.write_text('total_iter: 10\n')
    basicsr.train.copy_opt_file(str(opt), str(exp))
    opt.write_text('total_iter: 20\n')
    basicsr.train.copy_opt_file(str(opt), str(exp))
    assert os.listdir(exp) == ['opt.yml']
    copy = (exp / 'opt.yml').read_text()
    assert 'total_iter: 20' in copy and 'total_iter: 10' not in copy
    with pytest.raises(shutil.SameFileError):
        basicsr.train.copy_opt_file(str(exp / 'opt.yml'), str(exp))


def test_mkdir_and_rename_reuses_an_archive_name_within_a_second(tmp_path):
    """basicsr's ``mkdir_and_rename`` names the archive ``<folder>_archived_<time>`` to the second; when that
    name exists (a second fresh start within the same second) the rename fails (replaced by
    ``compat.mkdir_and_rename``, which adds a counter)."""
    from basicsr.utils import misc
    folder = tmp_path / 'results' / 'run'
    folder.mkdir(parents=True)
    now = time.time()
    for second in range(3):  # the archive names of this second and the next two are taken
        taken = tmp_path / 'results' / f'run_archived_{time.strftime("%Y%m%d_%H%M%S", time.localtime(now + second))}'
        taken.mkdir()
        (taken / 'earlier.log').write_text('an earlier run')
    with pytest.raises(OSError):
        misc.mkdir_and_rename(str(folder))
    assert folder.is_dir()


def test_image_datasets_name_no_file_on_a_bad_image(tmp_path):
    """basicsr's ``PairedImageDataset`` (and ``SingleImageDataset``, same decoding) fails on an undecodable
    file with ``'NoneType' object has no attribute 'astype'``, naming no file (compat wraps ``__getitem__``)."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    from basicsr.data.single_image_dataset import SingleImageDataset
    for folder in ('gt', 'lq'):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'broken.png').write_bytes(b'not a png')
    paired = PairedImageDataset({'dataroot_gt': str(tmp_path / 'gt'), 'dataroot_lq': str(tmp_path / 'lq'),
                                 'io_backend': {'type': 'disk'}, 'phase': 'val', 'scale': 2})
    single = SingleImageDataset({'dataroot_lq': str(tmp_path / 'lq'), 'io_backend': {'type': 'disk'},
                                 'phase': 'test', 'scale': 2})
    for dataset in (paired, single):
        with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'astype'") as err:
            dataset[0]
        assert 'broken' not in str(err.value)


def test_resume_restarts_the_saved_epoch_from_its_first_batch():
    import basicsr.train
    from basicsr.data.data_sampler import EnlargedSampler
    source = inspect.getsource(basicsr.train.train_pipeline)
    assert "start_epoch = resume_state['epoch']" in source  # the saved epoch again, from ...
    assert 'prefetcher.reset()' in source  # ... its first batch
    assert set(inspect.signature(EnlargedSampler.__init__).parameters) == {'self', 'dataset', 'num_replicas', 'rank',
                                                                           'ratio'}  # no start position
    sampler = EnlargedSampler(list(range(8)), num_replicas=1, rank=0, ratio=1)
    sampler.set_epoch(3)
    assert len(list(sampler)) == 8  # every epoch is whole


def test_parse_options_accepts_unknown_keys_and_makes_folders_for_them(tmp_path, monkeypatch):
    """basicsr's ``parse_options`` checks no key: a misspelt ``path:`` key passes, and ``make_exp_dirs`` then
    creates a folder named after its value (the plugin's entry points check every key after parsing, in their
    replacement of ``parse_options``)."""
    from basicsr.utils.misc import make_exp_dirs
    from basicsr.utils.options import parse_options
    opt_file = tmp_path / 'test.yml'
    opt_file.write_text(yaml.safe_dump({
        'name': 'typo', 'model_type': 'SRModel', 'scale': 2, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {}, 'network_g': {'type': 'MRNet', 'num_feet': 8},
        'path': {'pretrain_netwrok_g': str(tmp_path / 'weights.pth')}}))
    monkeypatch.setattr(sys, 'argv', ['test.py', '-opt', str(opt_file)])
    opt, _ = parse_options(str(tmp_path), is_train=False)
    assert opt['network_g']['num_feet'] == 8 and 'pretrain_netwrok_g' in opt['path']
    make_exp_dirs(opt)
    assert (tmp_path / 'weights.pth').is_dir()


def test_basicsr_imports_the_removed_torchvision_module():
    """basicsr 1.4.2's ``degradations.py`` imports ``torchvision.transforms.functional_tensor``, removed in
    torchvision 0.17 (``compat.install_import_alias`` provides it)."""
    import basicsr.data.degradations as degradations
    source = inspect.getsource(degradations)
    assert 'from torchvision.transforms.functional_tensor import rgb_to_grayscale' in source
    import torchvision.transforms
    assert not os.path.exists(os.path.join(os.path.dirname(torchvision.transforms.__file__), 'functional_tensor.py'))
