"""Test-side launcher: ``mrnet train`` in this (child) process, with test hooks patched into the model class.

Usage (directly, or as the script of ``torch.distributed.run``)::

    python tests/launch_train.py [--dump-rank-weights DIR] [--kill-after-save N] [--kill-inside-write N]
                                 -- -opt X.yml [--auto_resume] [--launcher pytorch] ...

- ``--dump-rank-weights DIR``: after the final save and after each validation, every rank writes
  ``DIR/net_g_rank<rank>.pth`` with ``{'params', 'rank', 'iter', 'validations'}``; ``validations`` counts the
  validation passes this rank ran itself.
- ``--kill-after-save N``: SIGKILL this process right after the checkpoint and training state of iteration N
  are saved.
- ``--kill-inside-write N``: SIGKILL this process in the middle of writing the checkpoint of iteration N: half
  of the file is on disk (in its temporary file), nothing has been renamed yet.
- ``--kill-inside-state-write N``: the same inside the write of the training state of iteration N (its
  checkpoint is complete).
- ``--pause-after-save N``: after the checkpoint and training state of iteration N are saved, print
  ``[launch_train] paused at N`` and wait (holding everything a running training holds) until killed.
- ``--signal-at N SIGNAL``: send ``SIGNAL`` (``TERM``, ``USR1``) to this process at the start of iteration N.
- ``--announce-iterations``: print ``[launch_train] iteration N`` at the start of every iteration and sleep
  0.2 s, so that a test can signal the process from outside while it trains.
- ``--record-samples DIR``: every rank appends the index of each training sample it loads to
  ``DIR/samples_rank<rank>.txt``, one ``<epoch> <index>`` line per sample (the epoch of the sampler).

The hooks patch the model class in this process only; the plugin itself has no test hooks.
"""
import argparse
import os
import signal
import sys
import time
from os import path as osp

import torch  # noqa: E402

from mrnet_arch.cli import run_command  # noqa: E402
from mrnet_arch.commands import pipelines as entry  # noqa: E402
from mrnet_arch.models import mrnet_checkpoint, mrnet_model  # noqa: E402


def _kill():
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _cut_writes():
    """Make the next atomic write stop halfway through with SIGKILL."""
    atomic_write = mrnet_checkpoint._atomic_write

    def half_write(path, write, binary=True, **kwargs):
        def cut(f):
            write(f)
            f.flush()
            f.truncate(f.tell() // 2)
            f.flush()
            _kill()
        return atomic_write(path, cut, binary, **kwargs)

    mrnet_checkpoint._atomic_write = half_write


def _record_samples(folder):
    """Make every rank log the indices of the training samples it loads (with the sampler's epoch)."""
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.data.paired_image_dataset import PairedImageDataset
    os.makedirs(folder, exist_ok=True)
    getitem, set_epoch = PairedImageDataset.__getitem__, EnlargedSampler.set_epoch
    epoch = {'now': 0}

    def recorded_set_epoch(self, value):
        epoch['now'] = value
        return set_epoch(self, value)

    def recorded_getitem(self, index):
        if self.opt['phase'] == 'train':
            rank = int(os.environ.get('RANK', 0))
            with open(osp.join(folder, f'samples_rank{rank}.txt'), 'a', encoding='utf-8') as f:
                f.write(f"{epoch['now']} {index % len(self.paths)}\n")
        return getitem(self, index)

    EnlargedSampler.set_epoch = recorded_set_epoch
    PairedImageDataset.__getitem__ = recorded_getitem


def signal_hooks(signal_at=None, announce=False):
    """Send a signal at the start of an iteration, or announce every iteration (see the module docstring)."""
    model_cls = mrnet_model.MRNetModel
    optimize = model_cls.optimize_parameters

    def hooked_optimize(self, current_iter):
        if announce:
            print(f'[launch_train] iteration {current_iter}', flush=True)
            time.sleep(0.2)
        if signal_at and current_iter == int(signal_at[0]):
            os.kill(os.getpid(), getattr(signal, f'SIG{signal_at[1]}'))
        return optimize(self, current_iter)

    model_cls.optimize_parameters = hooked_optimize


def install_hooks(dump_dir=None, kill_after_save=None, kill_inside_write=None, kill_inside_state_write=None,
                  pause_after_save=None):
    model_cls = mrnet_model.MRNetModel
    counts = {'validations': 0}
    nondist_validation, validation, save = model_cls.nondist_validation, model_cls.validation, model_cls.save
    save_network, save_training_state = model_cls.save_network, model_cls.save_training_state

    def dump(self, current_iter):
        if not dump_dir:
            return
        os.makedirs(dump_dir, exist_ok=True)
        params = {k: v.detach().cpu().clone() for k, v in self.get_bare_model(self.net_g).state_dict().items()}
        torch.save({'params': params, 'rank': self.opt['rank'], 'iter': current_iter,
                    'validations': counts['validations']}, osp.join(dump_dir, f"net_g_rank{self.opt['rank']}.pth"))

    def counted_validation(self, *args, **kwargs):
        counts['validations'] += 1
        return nondist_validation(self, *args, **kwargs)

    def dumped_validation(self, dataloader, current_iter, *args, **kwargs):
        result = validation(self, dataloader, current_iter, *args, **kwargs)
        dump(self, current_iter)
        return result

    def hooked_save(self, epoch, current_iter):
        save(self, epoch, current_iter)
        if kill_after_save is not None and current_iter == kill_after_save:
            _kill()
        if pause_after_save is not None and current_iter == pause_after_save:
            print(f'[launch_train] paused at {current_iter}', flush=True)
            while True:
                time.sleep(1)
        if current_iter == -1:
            dump(self, current_iter)

    def hooked_save_network(self, net, net_label, current_iter, param_key='params'):
        if current_iter == kill_inside_write:
            _cut_writes()
        return save_network(self, net, net_label, current_iter, param_key)

    def hooked_save_training_state(self, epoch, current_iter):
        if current_iter == kill_inside_state_write:
            _cut_writes()
        return save_training_state(self, epoch, current_iter)

    model_cls.nondist_validation = counted_validation
    model_cls.validation = dumped_validation
    model_cls.save = hooked_save
    model_cls.save_network = hooked_save_network
    model_cls.save_training_state = hooked_save_training_state


def main():
    argv = sys.argv[1:]
    split = argv.index('--') if '--' in argv else len(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument('--dump-rank-weights')
    parser.add_argument('--kill-after-save', type=int)
    parser.add_argument('--kill-inside-write', type=int)
    parser.add_argument('--kill-inside-state-write', type=int)
    parser.add_argument('--pause-after-save', type=int)
    parser.add_argument('--record-samples')
    parser.add_argument('--signal-at', nargs=2, metavar=('N', 'SIGNAL'))
    parser.add_argument('--announce-iterations', action='store_true')
    # torchrun passes --local-rank=N to scripts when --use-env is not set; keep it for the pipeline
    args, rest = parser.parse_known_args(argv[:split])
    install_hooks(args.dump_rank_weights, args.kill_after_save, args.kill_inside_write, args.kill_inside_state_write,
                  args.pause_after_save)
    if args.record_samples:
        _record_samples(args.record_samples)
    if args.signal_at or args.announce_iterations:
        signal_hooks(args.signal_at, args.announce_iterations)
    return run_command('mrnet train', entry.train, rest + argv[split + 1:])  # errors as mrnet train ends on them


if __name__ == '__main__':
    sys.exit(main())
