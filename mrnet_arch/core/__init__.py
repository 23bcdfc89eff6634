"""The shared layer under the ``mrnet`` commands, the benchmarks and the tools: one place for each job.

Modules (import them directly; this package imports nothing, so ``mrnet --help`` stays fast):

- ``images``: accepted extensions, the one image reader and writer (bit depth, alpha and gray kept), listing.
- ``files``: atomic writes (built on ``mrnet_arch.models.mrnet_model.atomic_write``), JSON objects.
- ``precision``: the precision table (name -> torch dtype and mode).
- ``device``: ``resolve_device`` and ``sync``.
- ``fast``: ``prepare_fast``, the inference wrapper (eval, precision, channels_last, compile).
- ``tiling``: ``tiled_forward``, a forward tile by tile that equals the untiled one.
- ``arch_info``: what follows from an MRNet arch config (``receptive_radius``).
- ``complexity``: parameter and MAC counts.
- ``machine``: the machine a measurement ran on.
- ``specs``: model specs (``mrnet bench --models`` syntax: presets, ``ARCH:k=v``, option files, weights).
- ``evaluation``: GT/LR and GT/SR pairing, Y-channel PSNR/SSIM with BasicSR's metrics.
- ``arguments``: argparse options shared by the commands.
- ``prepare``: the data preparation library behind ``mrnet prepare`` (sub-images, LMDBs, benchmark layout).
- ``crops``, ``figure``, ``page``: visual comparisons (crop choice and scores, paper-style figures, the static
  HTML page with ``scores.json``), used by ``mrnet compare`` and ``mrnet demo``.
- ``plugins``: ``import_modules``, the ``--import MODULE`` option of ``mrnet bench`` and ``mrnet compare``.

The layer may import ``mrnet_arch.archs``, ``models``, ``data`` and ``weights``; none of those imports it
back, except ``weights`` (``files.json_object``). No command module is imported here.
"""
