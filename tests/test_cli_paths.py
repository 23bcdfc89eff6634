"""Paths given on the command line resolve against the working directory in every command, as in any shell tool
(``mrnet_arch.commandline.cli_paths``); the project root is for paths inside option files and for the defaults of output
options left out. An output that would replace an input is refused with one line, before anything is written.

(``mrnet prepare``: ``tests/test_prepare.py::test_relative_paths_are_the_working_directorys_and_defaults_the_project_
roots`` and ``::test_an_input_folder_the_command_would_write_is_refused``.)
"""
import os
from os import path as osp

import cv2
import pytest
import torch

import mrnet_arch  # noqa: F401  (compat fixes + registration)
from _photos import write_photos
from mrnet_arch import MRNet
from mrnet_arch.cli import main as mrnet
from mrnet_arch.commands import compare, demo, infer, prepare
from mrnet_arch.commands.bench.command import run as bench_run
from mrnet_arch.dataprep.prepare import prepare_benchmark
from mrnet_arch.errors import InputError


@pytest.fixture()
def work(tmp_path, monkeypatch):
    """A working directory with ``photo.png`` (a real photo crop) and tiny weights ``w.pth``, and a project root
    elsewhere (``$MRNET_ROOT``), which must stay empty."""
    cwd, root = tmp_path / 'work', tmp_path / 'root'
    write_photos(str(cwd), {'photo.png': ('astronaut', 48, 60)})
    torch.manual_seed(0)
    torch.save({'params': MRNet(num_feat=8, num_block=1, upscale=2, num_recursion=2).state_dict()}, cwd / 'w.pth')
    monkeypatch.setenv('MRNET_ROOT', str(root))
    monkeypatch.chdir(cwd)
    yield cwd
    assert not root.exists()


def _infer(*args):
    return mrnet(['infer', '--weights', 'w.pth', '--device', 'cpu', '--precision', 'fp32', *args])


def test_infer_output_with_an_image_extension_is_the_output_file(work):
    assert _infer('--input', 'photo.png', '--output', 'photo_x2.jpg') == 0
    assert open('photo_x2.jpg', 'rb').read(3) == b'\xff\xd8\xff'  # JPEG, the format of the extension
    assert cv2.imread('photo_x2.jpg').shape == (96, 120, 3)
    assert _infer('--input', 'photo.png', '--output', 'sub/photo_x2.png') == 0  # its folder is created
    assert cv2.imread(osp.join('sub', 'photo_x2.png')).shape == (96, 120, 3) and osp.isfile('sub/photo_x2.png')
    assert _infer('--input', 'photo.png', '--output', 'folder') == 0  # no image extension: a folder, as before
    assert os.listdir('folder') == ['photo.png']


@pytest.mark.parametrize('args,message', [
    (['--input', 'photo.png', '--output', 'photo.png'],
     '--output photo.png is the input file: inputs are never overwritten, choose another name'),
    (['--input', 'photo.png', '--output', './photo.png', '--overwrite'],
     '--output ./photo.png is the input file: inputs are never overwritten, choose another name'),
    (['--input', '.', '--output', 'all_x2.png'],
     '--output all_x2.png names an image file, but --input . is a folder: give an output folder'),
    (['--input', 'photo.png', '--output', 'w.pth'], '--output w.pth is a file, not a folder'),
    (['--input', 'photo.png', '--output', 'photo_x2.png', '--suffix', '_sr'], '--suffix is for an output folder'),
])
def test_infer_refuses_outputs_that_would_replace_inputs_in_one_line(work, capsys, args, message):
    before = {p: open(p, 'rb').read() for p in os.listdir('.')}
    assert _infer(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f'mrnet infer: error: {message}')
    assert {p: open(p, 'rb').read() for p in os.listdir('.')} == before  # nothing written, nothing replaced


def test_help_says_where_paths_go(capsys):
    for main, words in ((infer.main, ('output file', 'working directory', 'never overwritten')),
                        (prepare.main, ('relative to the working directory', 'under the project root'))):
        with pytest.raises(SystemExit):
            main(['--help'] if main is infer.main else ['div2k', '--help'])
        text = ' '.join(capsys.readouterr().out.split())
        assert all(w in text for w in words), (words, text)


def test_prepare_photos_cache_and_output_follow_the_rule(tmp_path, monkeypatch):
    monkeypatch.setenv('MRNET_ROOT', str(tmp_path / 'root'))
    monkeypatch.chdir(tmp_path)
    parse = prepare.build_parser().parse_args
    args = prepare.resolve_paths(parse(['photos', '--source', 'debian', '--cache', 'c', '--output', 'o']))
    assert (args.cache, args.output) == (str(tmp_path / 'c'), str(tmp_path / 'o'))
    args = prepare.resolve_paths(parse(['photos', '--source', 'debian']))
    assert (args.cache, args.output) == (osp.join(tmp_path, 'root', 'datasets', 'debian_cache'),
                                         osp.join(tmp_path, 'root', 'datasets', 'photos_bench'))


def test_export_and_card_write_relative_to_the_working_directory(work, capsys):
    assert mrnet(['export', '--weights', 'w.pth', '--format', 'safetensors', '--output', 'out/w.safetensors']) == 0
    assert osp.getsize(osp.join('out', 'w.safetensors')) > 0
    assert mrnet(['card', '--weights', 'w.pth', '--output', 'out/card.md']) == 0
    assert open(osp.join('out', 'card.md'), encoding='utf-8').read().startswith('#')
    capsys.readouterr()
    before = open('w.pth', 'rb').read()
    assert mrnet(['card', '--weights', 'w.pth', '--output', 'w.pth']) == 2
    assert mrnet(['export', '--weights', 'w.pth', '--format', 'onnx', '--output', './w.pth', '--overwrite']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['mrnet card: error: --output w.pth is an input file: inputs are never overwritten, choose another '
                   'name', 'mrnet export: error: --output ./w.pth is the weight file itself: inputs are never '
                   'overwritten, choose another name']
    assert open('w.pth', 'rb').read() == before


def test_contribute_refuses_a_pr_body_that_is_its_weights(work, capsys):
    assert mrnet(['contribute', 'basicsr', 'checkout', '--weights', 'w.pth', '--pr-body', './w.pth']) == 2
    assert capsys.readouterr().err.strip() == ('mrnet contribute: error: --pr-body ./w.pth is the --weights file: '
                                               'inputs are never overwritten, choose another name')


@pytest.fixture()
def bench_set(work):
    """``set/`` (GTmod12 + LRbicx2) in the working directory."""
    prepare_benchmark('.', 'set', scales=[2])
    return 'set'


def test_bench_and_compare_read_and_write_relative_to_the_working_directory(bench_set, capsys):
    result = bench_run(['--models', 'Bicubic', '--benchmarks', bench_set, '--device', 'cpu', '--skip-latency',
                        '--precision', 'fp32', '--output-dir', 'results', '--name', 'b'])
    assert sorted(os.listdir('results')) == ['b.json', 'b.md']
    assert result['models'][0]['metrics']['set']['fp32']['images'] == 1
    compare.run(['--benchmarks', bench_set, '--output', 'cmp', '--device', 'cpu'])
    assert osp.isfile(osp.join('cmp', 'index.html')) and osp.isfile(osp.join('cmp', 'figures', 'photo.png'))


def test_bench_and_compare_refuse_outputs_over_their_inputs(bench_set):
    gt = osp.join(bench_set, 'GTmod12')
    before = {f: open(osp.join(gt, f), 'rb').read() for f in os.listdir(gt)}
    with pytest.raises(InputError, match=r'^the results file set/GTmod12/photo.png would replace an '
                       'input: choose another --name or --output-dir, inputs are never overwritten$'):
        bench_run(['--models', 'Bicubic', '--benchmarks', bench_set, '--device', 'cpu', '--skip-latency',
                   '--output-dir', gt, '--name', 'photo', '--plot'])
    with pytest.raises(InputError, match=r'^--output \. is or holds the input folder set: choose a '
                       'folder outside the inputs, they are never overwritten$'):
        compare.run(['--benchmarks', bench_set, '--output', '.', '--overwrite', '--device', 'cpu'])
    assert {f: open(osp.join(gt, f), 'rb').read() for f in os.listdir(gt)} == before
    assert sorted(os.listdir('.')) == ['photo.png', 'set', 'w.pth']


def test_demo_has_no_path_arguments():
    """``mrnet demo``'s layout is fixed under the project root: it takes no path (file or folder) argument."""
    options = [a.option_strings[0] for a in demo.build_parser()._actions if a.dest != 'help']
    assert options == ['--iters', '--from-scratch', '--lr', '--name']
