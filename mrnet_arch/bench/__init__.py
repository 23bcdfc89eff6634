"""``mrnet bench``: compare SR models side by side, like the paper's Table 3 and Figure 9.

One module per job: ``cli`` (the command: options, the run over models, the result files), ``measure``
(latency, peak memory), ``score`` (Y-PSNR/SSIM on benchmark folders) and ``report`` (Markdown, PNG plot).
Model specs, the evaluation, the precision table and the counts are in the shared layer
(``mrnet_arch.core``), which ``mrnet compare`` and the benchmarks use too.
"""
from mrnet_arch.bench.cli import main, parse_model_spec, run

__all__ = ['main', 'parse_model_spec', 'run']
