"""``mrnet compare``: SR outputs of several models side by side, as figures and a static HTML page.

The command is ``cli``; the rendering library it uses (crop choice, figures, the page) is in the shared
layer, ``mrnet_arch.core.crops``, ``mrnet_arch.core.figure`` and ``mrnet_arch.core.page``, so that
``mrnet demo`` draws its figure with the same code.
"""
