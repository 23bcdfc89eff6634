"""Where a run's ``experiments/`` and relative ``datasets/...`` paths go (``mrnet_arch.project.project_root``)."""
import os
import os.path as osp

from _tiny import REPO
from mrnet_arch.project import project_root, source_checkout


def test_option_files_inside_the_checkout_use_the_checkout(monkeypatch):
    monkeypatch.delenv('MRNET_ROOT', raising=False)
    assert source_checkout() == REPO
    for rel in ('options/train_MRNet_x2.yml', 'benchmarks/options/train_throughput_MRNet_x2.yml',
                'options/ablation/fig7_x2_T2.yml'):
        assert project_root(osp.join(REPO, rel)) == REPO, rel
    assert project_root() == REPO


def test_a_project_elsewhere_is_the_parent_of_its_options_folder(tmp_path, monkeypatch):
    monkeypatch.delenv('MRNET_ROOT', raising=False)
    opt = tmp_path / 'proj' / 'options' / 'x2' / 'train.yml'
    opt.parent.mkdir(parents=True)
    opt.write_text('name: x\n', encoding='utf-8')
    assert project_root(str(opt)) == str(tmp_path / 'proj')
    loose = tmp_path / 'loose.yml'
    loose.write_text('name: x\n', encoding='utf-8')
    assert project_root(str(loose)) == REPO  # no options/ folder above it: the checkout


def test_mrnet_root_wins(tmp_path, monkeypatch):
    monkeypatch.setenv('MRNET_ROOT', str(tmp_path))
    assert project_root(osp.join(REPO, 'options', 'train_MRNet_x2.yml')) == str(tmp_path)
    monkeypatch.chdir(tmp_path)
    os.environ['MRNET_ROOT'] = '.'
    assert project_root() == str(tmp_path)


def test_a_project_root_that_is_not_a_folder_is_named(tmp_path, monkeypatch):
    import sys

    import pytest

    from mrnet_arch.commands import pipelines
    yml = tmp_path / 'options' / 'train.yml'
    yml.parent.mkdir()
    yml.write_text('name: x\n')
    monkeypatch.setenv('MRNET_ROOT', str(tmp_path / 'absent'))
    monkeypatch.setattr(sys, 'argv', list(sys.argv))
    cwd = os.getcwd()
    from mrnet_arch.errors import InputError
    with pytest.raises(InputError, match=f'^the project root {tmp_path / "absent"} .* is not a folder'):
        pipelines.train(['-opt', str(yml)])
    assert os.getcwd() == cwd and not (tmp_path / 'absent').exists()
