"""A full disk at every place the plugin writes, on a real full file system (a small tmpfs mounted for the test).

Checkpoints and training states (``atomic_write``), a whole ``mrnet train`` run, LMDB preparation, images and
results files: the error names the folder and says that the disk is full, no unfinished file stays behind, an
existing complete file is unchanged, and training resumes with ``--auto_resume`` once space is freed.
"""
import errno
import json
import os
import subprocess
import sys
from os import path as osp

import numpy as np
import pytest
import torch

import _tiny
from mrnet_arch.commands import pipelines as entry
from mrnet_arch.dataprep import lmdb_store
from mrnet_arch.errors import exit_status
from mrnet_arch.models import mrnet_checkpoint, mrnet_model
from mrnet_arch.models.mrnet_checkpoint import DiskFullError, atomic_torch_save
from mrnet_arch.storage import files, images


def mount_tmpfs(folder, size):
    """Mount a tmpfs of ``size`` (e.g. '1m') on ``folder``; skip the test, naming why, when mounting is not allowed."""
    os.makedirs(folder, exist_ok=True)
    run = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(folder)], capture_output=True,
                         text=True)
    if run.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): {run.stderr.strip()}')
    return folder


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB file system of its own, unmounted afterwards."""
    folder = mount_tmpfs(tmp_path / 'small', '1m')
    yield folder
    subprocess.run(['umount', '-l', str(folder)], check=False)


def fill(folder, leave=0):
    """Fill the file system of ``folder`` with ``folder/filler`` until the disk is full, then give ``leave`` bytes
    back. Returns the filler's path."""
    filler = osp.join(folder, 'filler')
    with open(filler, 'ab', buffering=0) as f:
        try:
            while True:
                f.write(b'\0' * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    if leave:
        os.truncate(filler, max(os.path.getsize(filler) - leave, 0))
    return filler


def _no_temp_files(folder):
    return [n for n in os.listdir(folder) if n.endswith('.tmp')] == []


def test_torch_checkpoint_on_a_full_disk_names_the_folder_and_keeps_the_old_file(small_disk):
    path = osp.join(small_disk, 'net_g_2.pth')
    atomic_torch_save({'params': {'w': torch.ones(10)}}, path)
    before = open(path, 'rb').read()
    big = {'params': {'w': torch.zeros(400_000)}}  # 1.6 MB on a 1 MiB file system
    with pytest.raises(DiskFullError) as info:
        atomic_torch_save(big, path)
    message = str(info.value)
    assert message.startswith(f'{small_disk}: the disk is full (No space left on device) while writing net_g_2.pth')
    assert f'needs about 1.5 MiB ({1_600_000 + 4096} bytes)' in message
    assert 'the previous net_g_2.pth is unchanged' in message and '\n' not in message
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert 'inline_container' in str(info.value.__cause__)  # what torch says, kept as the cause
    assert open(path, 'rb').read() == before
    assert _no_temp_files(small_disk)


@pytest.mark.parametrize('needed, free, what', [
    (4096, 0, 'nothing was lost'),
    (None, 5 << 20, 'the previous a is unchanged'),
    (3 << 30, None, 'nothing complete was lost'),
])
def test_checkpoints_and_other_files_name_a_full_disk_in_the_same_words(needed, free, what):
    """The drop-in's private copy (checkpoints) and ``storage/files.py`` (every other file) say the same."""
    ours, drop_in = files.DiskFullError('/d', 'a', needed, free, what), DiskFullError('/d', 'a', needed, free, what)
    assert str(ours) == str(drop_in) and ours.errno == drop_in.errno == errno.ENOSPC
    assert str(ours).startswith('/d: the disk is full (No space left on device) while writing a')
    assert files.size_text(needed or 0) == mrnet_checkpoint._size_text(needed or 0)
    assert isinstance(ours, OSError) and exit_status(ours) == exit_status(drop_in) == 1


COPIED = ('DISK_FULL_ERRNOS', '_MIB', 'DiskFullError', '_disk_full_error', 'size_text', 'free_bytes', 'is_disk_full',
          'atomic_write', '_file_mode', '_kept')


def _copied_definitions(path):
    """The definitions of ``COPIED`` in a file, as ``ast.dump`` text without docstrings or class bases, with the
    drop-in's private names (``_size_text``) read as the public ones (``size_text``)."""
    import ast
    public = {f'_{name}': name for name in COPIED if not name.startswith('_')}

    class Normalise(ast.NodeTransformer):
        def visit_Name(self, node):
            node.id = public.get(node.id, node.id)
            return node

        def _named(self, node):
            node.name = public.get(node.name, node.name)
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            node.body = [self.visit(child) for child in body]
            return node

        visit_FunctionDef = _named

        def visit_ClassDef(self, node):
            node.bases = []
            return self._named(node)

    tree = ast.parse(open(path, encoding='utf-8').read())
    found = {}
    for node in tree.body:
        node = Normalise().visit(node)
        name = getattr(node, 'name', None) or (node.targets[0].id if isinstance(node, ast.Assign) else None)
        if name in COPIED:
            found[name] = ast.dump(node)
    return found


def test_the_checkpoints_copy_of_the_atomic_write_is_verbatim():
    """``models/mrnet_checkpoint.py`` (a drop-in: it must not import the plugin) carries a private copy of the atomic
    write of ``storage/files.py``; a change to one that is not made to the other fails here."""
    ours, drop_in = _copied_definitions(files.__file__), _copied_definitions(mrnet_checkpoint.__file__)
    assert sorted(ours) == sorted(drop_in) == sorted(COPIED)
    different = [name for name in COPIED if ours[name] != drop_in[name]]
    assert not different, different


def test_text_images_and_results_files_on_a_full_disk(small_disk):
    fill(small_disk)
    results = {'a': '1'}
    needed = len(json.dumps(results))
    expected = rf'the disk is full .* while writing results\.json; it needs about {needed} bytes, 0 bytes free'
    with pytest.raises(files.DiskFullError, match=expected):
        files.write_json(osp.join(small_disk, 'results.json'), results)
    with pytest.raises(files.DiskFullError, match=r'while writing out\.png; it needs about'):
        images.write_image(osp.join(small_disk, 'out.png'), np.random.default_rng(0).integers(0, 255, (64, 64, 3),
                                                                                              dtype=np.uint8))
    assert sorted(os.listdir(small_disk)) == ['filler']


def test_lmdb_on_a_full_disk_is_named_and_removed(tmp_path, small_disk):
    lq, _ = _tiny.make_pairs(str(tmp_path / 'data'), n=6, size=200)
    fill(small_disk, leave=200 << 10)  # room for a part of the 6 x 30 KB BMP values and LMDB's pages
    with pytest.raises(files.DiskFullError) as info:
        lmdb_store.build_lmdb(lq, osp.join(small_disk, 'LR.lmdb'))
    assert str(info.value).startswith(f'{small_disk}: the disk is full (No space left on device) while writing the '
                                      'LMDB LR.lmdb; it needs about')
    assert sorted(os.listdir(small_disk)) == ['filler']  # the unfinished LMDB is gone

    hr = tmp_path / 'hr'
    hr.mkdir()
    for i in range(2):
        images.write_image(str(hr / f'{i}.png'), _tiny.photo_crop(i, 96)[..., ::-1].copy())
    fill(small_disk)
    proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', 'prepare', 'benchmark', '--input', str(hr),
                           '--output', osp.join(small_disk, 'Set2'), '--scales', '2', '--workers', '1'],
                          env=_tiny.env(str(tmp_path)), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f'mrnet prepare: error: {small_disk}/Set2/')
    assert 'the disk is full' in proc.stderr and 'Traceback' not in proc.stderr


def test_training_on_a_full_disk_stops_in_one_line_keeps_the_last_checkpoint_and_resumes(root, monkeypatch):
    """The disk fills after the save at iteration 2: the save at 4 fails on a real full file system; `mrnet train`
    exits with one line; after space is freed, --auto_resume continues from 2 and finishes."""
    experiments = mount_tmpfs(root / 'experiments', '2m')
    try:
        train = _tiny.make_pairs(str(root / 'data'), n=2, size=40)
        yml = _tiny.write_yml(_tiny.train_options('tiny', train, total_iter=6, save_freq=2), str(root / 'tiny.yml'))
        save_state = mrnet_model.MRNetModel.save_training_state
        filler = []

        def save_then_fill(self, epoch, current_iter):
            save_state(self, epoch, current_iter)
            if current_iter == 2:
                filler.append(fill(experiments))

        monkeypatch.setattr(mrnet_model.MRNetModel, 'save_training_state', save_then_fill)
        with pytest.raises(DiskFullError) as info:  # mrnet_arch.cli prints it in one line (exit status 1)
            entry.train(['-opt', yml])
        message = str(info.value)
        exp = experiments / 'tiny'
        assert message.startswith(f"{exp / 'models'}: the disk is full (No space left on device) "
                                  'while writing net_g_4.pth; it needs about')
        assert '--auto_resume continues from the newest' in message and '\n' not in message
        assert sorted(os.listdir(exp / 'models')) == ['net_g_2.pth']  # no cut-short or temporary file
        assert sorted(os.listdir(exp / 'training_states')) == ['2.state']
        assert torch.load(exp / 'training_states' / '2.state', weights_only=False)['iter'] == 2

        monkeypatch.setattr(mrnet_model.MRNetModel, 'save_training_state', save_state)
        os.remove(filler[0])
        entry.train(['-opt', yml, '--auto_resume'])
        assert sorted(os.listdir(exp / 'training_states')) == ['2.state', '4.state', '6.state']
        assert _no_temp_files(exp / 'models')
    finally:
        subprocess.run(['umount', '-l', str(experiments)], check=False)


def test_mrnet_train_warns_when_the_disk_is_too_small_for_a_save_then_fails_in_one_line(tmp_path):
    root = tmp_path / 'root'
    experiments = mount_tmpfs(root / 'experiments', '1m')
    try:
        train = _tiny.make_pairs(str(tmp_path / 'data'), n=1, size=40)
        opt = _tiny.train_options('tiny', train, total_iter=2, save_freq=2, batch=1)
        yml = _tiny.write_yml(opt, str(tmp_path / 't.yml'))
        fill(experiments, leave=24 << 10)  # the log and the option copy fit, a checkpoint and state (~120 KB) not
        proc = _tiny.run_train(yml, str(root))
        assert proc.returncode == 1, proc.stderr[-3000:]
        lines = proc.stderr.strip().splitlines()
        warning = [line for line in lines if 'each save (checkpoint and training state) needs about' in line]
        assert len(warning) == 1 and str(experiments / 'tiny' / 'models') in warning[0], proc.stderr[-3000:]
        assert lines[-1].startswith(f"mrnet train: error: {experiments / 'tiny'}/")
        assert 'the disk is full (No space left on device)' in lines[-1]
        assert 'inline_container' not in proc.stderr and 'DiskFullError' not in proc.stderr
    finally:
        subprocess.run(['umount', '-l', str(experiments)], check=False)


def test_infer_and_export_into_a_full_disk_print_one_line(tmp_path, small_disk):
    weights = osp.join(_tiny.REPO, 'mrnet_arch', 'demo_weights', 'MRNet_demo_x2.pth')
    photo = tmp_path / 'photo.png'
    images.write_image(str(photo), _tiny.photo_crop(0, 48)[..., ::-1].copy())
    fill(small_disk)
    commands = {
        'infer': ['--weights', weights, '--input', str(photo), '--output', osp.join(small_disk, 'sr'), '--device',
                  'cpu'],
        'export': ['--weights', weights, '--format', 'onnx', '--output', osp.join(small_disk, 'mrnet.onnx')],
    }
    for command, args in commands.items():
        proc = subprocess.run([sys.executable, '-m', 'mrnet_arch', command, *args], env=_tiny.env(str(tmp_path)),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1, (command, proc.stderr[-2000:])
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f'mrnet {command}: error: ') and 'the disk is full (No space left on device)' in last, \
            last
        assert 'Traceback' not in proc.stderr
    assert sorted(os.listdir(small_disk)) == ['filler', 'sr']  # the output folder, with no file cut short in it
    assert os.listdir(osp.join(small_disk, 'sr')) == []


@pytest.mark.parametrize('write', ['files', 'checkpoint'])
def test_written_files_get_the_umask_mode_or_keep_the_replaced_files(tmp_path, write):
    """Not ``mkstemp``'s 0o600: a new file gets 0o666 less the umask, as ``open`` would give it; a replaced file keeps
    its mode."""
    save = ((lambda p: files.write_bytes(p, b'data')) if write == 'files' else
            (lambda p: atomic_torch_save({'params': {'w': torch.ones(2)}}, p)))
    old = os.umask(0o022)
    try:
        new = str(tmp_path / 'new.bin')
        save(new)
        assert os.stat(new).st_mode & 0o777 == 0o644
        os.chmod(new, 0o640)
        save(new)
        assert os.stat(new).st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
