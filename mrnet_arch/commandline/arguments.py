"""argparse options shared by the ``mrnet`` commands."""


def add_weights_arguments(parser):
    """Add the ``--weights`` and ``--no-ema`` options (``mrnet infer``, ``export``, ``card``).

    Args:
        parser (argparse.ArgumentParser): The parser to add them to.
    """
    parser.add_argument('--weights', required=True, help='weights: BasicSR .pth, plain state dict or .safetensors')
    parser.add_argument('--no-ema', action='store_true', help="use a checkpoint's params, not params_ema")
