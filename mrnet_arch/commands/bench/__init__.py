"""``mrnet bench``: compare SR models side by side, like the paper's Table 3 and Figure 9.

One module per job: ``command`` (the command: options, the run over models, the result files), ``measure``
(latency, peak memory), ``score`` (Y-PSNR/SSIM on benchmark folders) and ``report`` (Markdown, PNG plot).
"""
