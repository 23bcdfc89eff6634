"""A ``.pth`` that is no PyTorch checkpoint (cut short, a text file, a zip of something else) is named as such by
``read_state_dict`` and everything that reads weights through it, instead of ``OSError: [Errno 22] Invalid
argument``, ``KeyError`` or a zip reader error that names no file; real checkpoints of both torch formats load."""
import copy
import subprocess
import sys
import zipfile

import pytest
import torch

import _tiny
from mrnet_arch import MRNet
from mrnet_arch.models.mrnet_checkpoint import NOT_TORCH, WeightsError, read_state_dict, torch_file_problem
from mrnet_arch.preflight import checks

CONFIG = {'num_feat': 8, 'num_block': 1, 'num_recursion': 2, 'upscale': 2}


@pytest.fixture
def files(tmp_path):
    """A real checkpoint (both torch formats), and three files that are not torch checkpoints."""
    state = MRNet(**CONFIG).state_dict()
    good = tmp_path / 'net_g_10.pth'
    torch.save({'params': state}, good)
    legacy = tmp_path / 'legacy.pth'
    torch.save({'params': state}, legacy, _use_new_zipfile_serialization=False)
    data = good.read_bytes()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(data[:len(data) // 2])
    text = tmp_path / 'notes.pth'
    text.write_text('these are not weights\n')
    other_zip = tmp_path / 'archive.pth'
    with zipfile.ZipFile(other_zip, 'w') as z:
        z.writestr('readme.txt', 'an archive, not torch.save')
    return {'good': good, 'legacy': legacy, 'bad': {'truncated': truncated, 'text': text, 'zip': other_zip},
            'state': state}


def test_read_state_dict_names_a_file_that_is_no_torch_checkpoint(files):
    for kind, path in files['bad'].items():
        with pytest.raises(WeightsError) as info:
            read_state_dict(str(path))
        message = str(info.value)
        assert message.startswith(f'{path}: {NOT_TORCH}'), (kind, message)
        assert 'Errno' not in message, (kind, message)
    assert 'without its end' in torch_file_problem(str(files['bad']['truncated']))
    assert 'readme.txt' in torch_file_problem(str(files['bad']['zip']))
    for path in (files['good'], files['legacy']):
        assert torch_file_problem(str(path)) is None
        loaded, _ = read_state_dict(str(path))
        assert loaded.keys() == files['state'].keys()
        assert all(torch.equal(loaded[k], v) for k, v in files['state'].items())


def test_the_checks_and_the_model_name_it(files, tmp_path):
    from basicsr.models import build_model
    train = _tiny.make_pairs(str(tmp_path / 'data'), n=2, size=40)
    opt = _tiny.train_options('w', train, None)
    for path in files['bad'].values():
        case = copy.deepcopy(opt)
        case['path']['pretrain_network_g'] = str(path)
        parsed = _tiny.parse(_tiny.write_yml(case, str(tmp_path / 'w.yml')), str(tmp_path))
        message = f'path:pretrain_network_g: .*{path.name}: not a PyTorch checkpoint'
        with pytest.raises(checks.CheckError, match=message):
            checks.check_options(parsed)
        with pytest.raises(WeightsError, match=f'{path.name}: not a PyTorch checkpoint'):
            build_model(parsed)  # MRNetModel.load_network, as in a BasicSR checkout's own train.py


def test_mrnet_infer_names_it_without_a_traceback(files, tmp_path):
    photos = _tiny.make_pairs(str(tmp_path / 'photos'), n=1, size=40)[0]
    run = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'infer', '--weights', str(files['bad']['truncated']),
                          '--input', photos, '--output', str(tmp_path / 'out')], env=_tiny.env(str(tmp_path)),
                         capture_output=True, text=True, timeout=200)
    assert run.returncode == 2
    assert f'{files["bad"]["truncated"]}: {NOT_TORCH}' in run.stderr and 'Traceback' not in run.stderr
    assert not (tmp_path / 'out').exists()
