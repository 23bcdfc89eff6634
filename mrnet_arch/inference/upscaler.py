"""``Upscaler``: an SR network applied to numpy images and image files, within a memory budget (tiles chosen
from the memory model of ``mrnet_arch/models/mrnet_tiling.py`` and ``mrnet_arch.inference.memory``), in a precision
(``mrnet_arch.inference.precision``), keeping gray, alpha and 16 bits.

Image kinds are kept:

- 8-bit and 16-bit images stay 8-bit and 16-bit (each tile is processed as float in [0, 1] and written
  straight into the output of the input's type); float32 images in [0, 1] give float32;
- grayscale stays grayscale: for an RGB model the gray channel is replicated to RGB and the output is
  converted back to one channel (ITU-R BT.601 luma, as ``cv2.COLOR_BGR2GRAY``); a 1-channel model
  processes each channel of a colour image separately;
- BGRA: the BGR channels go through the model; the alpha channel is upscaled with bicubic interpolation
  (``cv2.INTER_CUBIC``) and clipped to its range.
"""
import sys

import cv2
import numpy as np
import torch

from mrnet_arch.archs.mrnet_config import receptive_radius
from mrnet_arch.errors import InvalidValueError
from mrnet_arch.inference import memory
from mrnet_arch.inference.fast import FastSR, prepare_fast
from mrnet_arch.inference.precision import resolve_precision
from mrnet_arch.inference.tiling import tiled_upscale
from mrnet_arch.models import mrnet_tiling
from mrnet_arch.storage import images

MEMORY_TILES = (512, 256, 128, 64, 32)  # tried in turn when a forward runs out of memory anyway
OTHER_PAD = 32  # the default overlap of a network without an MRNet config (approximate)
_ALPHA_PAD = 2  # bicubic reads 2 input pixels on each side


def is_out_of_memory(err):
    """Whether an exception is running out of memory (CUDA, the CPU allocator or numpy)."""
    if isinstance(err, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ('out of memory' in text or 'not enough memory' in text or
                                              "can't allocate memory" in text)


def mrnet_arch_config(arch, kwargs):
    """The config of an MRNet arch built from registry arguments (class defaults updated by ``kwargs``), for its
    overlap and memory model; None for other archs.

    Args:
        arch (str): Registered arch name.
        kwargs (dict): Its arguments.

    Returns:
        dict | None: The config (with ``type``).
    """
    if arch not in ('MRNet', 'MultiScaleMRNet'):
        return None
    import inspect

    from basicsr.utils.registry import ARCH_REGISTRY
    params = inspect.signature(ARCH_REGISTRY.get(arch)).parameters
    config = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    config.update(kwargs, type=arch)
    return config


def sizing(net, scale, config=None):
    """Overlap and memory per input pixel of a network: from its MRNet ``config`` when given (exact overlap:
    the receptive radius), else ``OTHER_PAD`` and ``memory.generic_bytes_per_pixel``.

    Returns:
        tuple[int, float | None]: ``(tile_pad, bytes_per_pixel)``.
    """
    if config is not None:
        return receptive_radius(config, scale), mrnet_tiling.mrnet_bytes_per_pixel(config, scale)
    return OTHER_PAD, memory.generic_bytes_per_pixel(net, scale)


def _stderr(message):
    print(message, file=sys.stderr, flush=True)


class Upscaler:
    """Applies an SR network to images, tile by tile when a forward would exceed the memory budget.

    Example::

        from mrnet_arch import Upscaler
        up = Upscaler.from_weights('net_g_latest.pth')      # device, precision and memory budget: auto
        sr = up.upscale(cv2.imread('photo.png', cv2.IMREAD_UNCHANGED))
        up.upscale_file('photo.jpg', 'photo_x2.jpg')         # ICC and EXIF carried

    Args:
        net (torch.nn.Module | callable): The network (NCHW RGB in [0, 1] -> ``scale`` times larger). A module
            is prepared in place by ``mrnet_arch.inference.fast.prepare_fast`` (eval mode, moved to ``device``; in
            bf16/fp16 its output head runs in float32); a ``FastSR`` or another callable is used as it is.
        config (dict | None): The MRNet config (``mrnet_arch.storage.weights.infer_config``): scale, channels,
            overlap and memory model come from it. None for other networks (then give ``scale``).
        device (torch.device | str): Device to run on. Default: 'cpu'.
        precision (str): 'auto', 'fp32', 'bf16' or 'fp16' (``mrnet_arch.inference.precision.resolve_precision``).
            Default: 'fp32'.
        tile (int | None): Tile size in input pixels, always used; None: chosen per image from the budget
            (whole when it fits). Default: None.
        tile_pad (int | None): Tile overlap; None: the receptive-field radius of ``config`` (tiled output equal
            to untiled up to float rounding), else ``OTHER_PAD``. Default: None.
        scale (int | None): The scale; default the config's.
        max_memory (int | str | None): Budget of one forward (bytes or a size such as '2G'); None: a share of
            the memory available now (``mrnet_arch.models.mrnet_tiling.memory_budget``). Default: None.
        channels_last (bool): Prepare a module in channels_last. Default: False.
        bytes_per_pixel (float | None): Memory of a forward per input pixel; default from ``config`` or, for a
            module, its widest convolution; unknown for other callables (then whole images, smaller tiles only
            when running out of memory).
        log (callable | None): Receives the message of each tiled run. Default: print to stderr.

    Raises:
        InvalidValueError: An unknown precision, fp16 off CUDA, no scale, or a negative tile or tile_pad.
        mrnet_arch.models.mrnet_tiling.MemoryBudgetError: A bad ``max_memory`` (named).
    """

    def __init__(self, net, config=None, device='cpu', precision='fp32', tile=None, tile_pad=None, *, scale=None,
                 max_memory=None, channels_last=False, bytes_per_pixel=None, log=None):
        self.device = torch.device(device)
        self.config = config
        self.scale = int(scale or (config and (config.get('upscale') or config.get('upscales', [None])[0])) or 0)
        if self.scale < 1:
            raise InvalidValueError('Upscaler needs a scale: give config or scale')
        self.precision = resolve_precision(precision, self.device)
        if isinstance(net, torch.nn.Module) and not isinstance(net, FastSR):
            if bytes_per_pixel is None and config is None:
                bytes_per_pixel = memory.generic_bytes_per_pixel(net, self.scale)
            net = prepare_fast(net, self.device, self.precision, channels_last=channels_last)
        self.net = net
        self.in_ch = int(config['num_in_ch']) if config else 3
        if tile is not None and tile < 0:
            raise InvalidValueError(f'tile must be >= 0, got {tile}')
        self.tile = tile or None
        if tile_pad is None:
            tile_pad = receptive_radius(config, self.scale) if config else OTHER_PAD
        if tile_pad < 0:
            raise InvalidValueError(f'tile_pad must be >= 0, got {tile_pad}')
        self.tile_pad = int(tile_pad)
        if bytes_per_pixel is None and config is not None:
            bytes_per_pixel = mrnet_tiling.mrnet_bytes_per_pixel(config, self.scale)
        self.bytes_per_pixel = bytes_per_pixel
        self.budget = mrnet_tiling.memory_budget(self.device, max_memory)
        self.log = _stderr if log is None else log
        self.last_tile = 0

    @classmethod
    def from_weights(cls, path, scale=None, device='auto', precision='auto', prefer_ema=True, **kwargs):
        """An Upscaler of an MRNet weight file (safetensors, or ``torch.load(weights_only=True)``).

        Args:
            path (str): The weights; the architecture is read from them.
            scale (int | None): Scale of multi-scale weights; default their (first) scale.
            device (str | torch.device): 'auto' (CUDA if available), 'cpu', 'cuda[:N]'. Default: 'auto'.
            precision (str): See ``Upscaler``. Default: 'auto'.
            prefer_ema (bool): Use ``params_ema`` over ``params``. Default: True.
            **kwargs: ``tile``, ``tile_pad``, ``max_memory``, ``log`` (see ``Upscaler``).

        Returns:
            Upscaler: Ready to run.

        Raises:
            mrnet_arch.storage.weights.WeightsError: Unreadable or not MRNet weights.
            InvalidValueError: A bad device or precision.
            mrnet_arch.models.mrnet_tiling.MemoryBudgetError: A bad ``max_memory``.
        """
        from mrnet_arch.inference.device import resolve_device
        from mrnet_arch.storage.weights import load_model
        device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        net, config = load_model(path, scale=scale, device=device, prefer_ema=prefer_ema)
        return cls(net, config, device, precision, **kwargs)

    @classmethod
    def from_pretrained(cls, repo_id_or_folder, scale=None, device='auto', precision='auto', revision=None, **kwargs):
        """An Upscaler of a model repository written by ``mrnet export --format hf``: a local folder, or a
        Hugging Face Hub repo id fetched through ``huggingface_hub.hf_hub_download`` (its cache;
        ``pip install "mrnet_arch[hf]"``).

        Example::

            up = Upscaler.from_pretrained('USER/mrnet-x2')       # or a folder: Upscaler.from_pretrained('mrnet_hf/')

        Args:
            repo_id_or_folder (str): The folder (with ``model.safetensors`` and ``config.json``) or repo id.
            scale (int | None): Scale of multi-scale weights; default their (first) scale.
            device (str | torch.device): See ``from_weights``. Default: 'auto'.
            precision (str): See ``Upscaler``. Default: 'auto'.
            revision (str | None): Hub branch, tag or commit. Default: the main branch.
            **kwargs: ``tile``, ``tile_pad``, ``max_memory``, ``log`` (see ``Upscaler``).

        Returns:
            Upscaler: Ready to run; ``config.json`` settles the arch config (it overrides what is read from the
            weights).

        Raises:
            ImportError: A repo id without huggingface_hub (the message names the ``hf`` extra).
            mrnet_arch.storage.weights.WeightsError: No weights in the folder or repo, or weights that do not fit
                ``config.json``.
        """
        from mrnet_arch.inference.device import resolve_device
        from mrnet_arch.publishing.hf_repo import pretrained_files
        from mrnet_arch.storage.weights import load_model
        weights, config = pretrained_files(repo_id_or_folder, revision)
        device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        net, config = load_model(weights, scale=scale, device=device, overrides=config)
        return cls(net, config, device, precision, **kwargs)

    # ------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _forward(self, img):
        """HWC float BGR (or gray) array -> upscaled HWC float array in [0, 1], same channels."""
        c = img.shape[2]
        x = torch.from_numpy(np.ascontiguousarray((img[:, :, ::-1] if c == 3 else img).transpose(2, 0, 1)))[None]
        if self.in_ch == 1 and c > 1:  # 1-channel model: each channel on its own
            x = x.transpose(0, 1)
        elif self.in_ch == 3 and c == 1:  # RGB model, gray image: replicate
            x = x.expand(-1, 3, -1, -1)
        y = self.net(x.to(self.device)).float().clamp_(0, 1)
        if self.in_ch == 1 and c > 1:
            y = y.transpose(0, 1)
        out = y[0].permute(1, 2, 0).cpu().numpy()
        if out.shape[2] == 3:
            out = np.ascontiguousarray(out[:, :, ::-1])
            if c == 1:
                out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)[:, :, None]
        return out

    def _run_tile(self, part):
        """One padded tile as stored -> its upscaled pixels in the output's type."""
        maxv = images.MAX_VALUES.get(part.dtype)
        f = part.astype(np.float32) / maxv if maxv else part.astype(np.float32, copy=False)
        out = self._forward(f[:, :, :3] if f.shape[2] == 4 else f)
        if f.shape[2] == 4:
            h, w = f.shape[:2]
            alpha = cv2.resize(f[:, :, 3], (w * self.scale, h * self.scale), interpolation=cv2.INTER_CUBIC)
            out = np.concatenate([out, np.clip(alpha, 0, 1)[:, :, None]], axis=2)
        return images.from_float(out, part.dtype) if maxv else out

    def tile_for(self, h, w, channels=3):
        """The tile size of an ``h`` x ``w`` image: ``tile`` when set, else from the budget (0: whole).

        Raises:
            mrnet_arch.models.mrnet_tiling.MemoryBudgetError: The budget is too small for the smallest tile.
        """
        if self.tile:
            return self.tile
        batch = channels if self.in_ch == 1 and channels > 1 else 1
        return mrnet_tiling.choose_tile(self.bytes_per_pixel, h, w, self.budget, self.tile_pad, batch)

    def check_budget(self):
        """Raise ``MemoryBudgetError`` (naming --max-memory) when the budget cannot hold the smallest tile."""
        if self.tile or not self.bytes_per_pixel or self.budget is None:
            return
        side = mrnet_tiling.MIN_TILE + 2 * self.tile_pad + 1
        mrnet_tiling.choose_tile(self.bytes_per_pixel, side, side, self.budget, self.tile_pad)

    def upscale(self, img):
        """Super-resolve one image.

        Args:
            img (np.ndarray): ``(H, W)`` or ``(H, W, C)``, C 1, 3 (BGR) or 4 (BGRA); uint8, uint16, or
                float32 in [0, 1].

        Returns:
            np.ndarray: ``scale`` times larger, same channels (a 2-D input gives ``(H, W, 1)``) and type.

        Raises:
            InvalidValueError: Another pixel type or channel count.
            mrnet_arch.models.mrnet_tiling.MemoryBudgetError: The budget is too small for the smallest tile.
        """
        if img.ndim == 2:
            img = img[:, :, None]
        if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
            raise InvalidValueError(f'expected an (H, W) or (H, W, C) image with C 1, 3 or 4, got shape {img.shape}')
        if img.dtype not in images.MAX_VALUES and img.dtype != np.float32:
            raise InvalidValueError(f'expected uint8, uint16 or float32 pixels, got {img.dtype}')
        h, w, c = img.shape
        tile = self.tile_for(h, w, c)
        reason = 'asked for' if self.tile else (
            f'a whole forward needs about {mrnet_tiling.format_bytes(self.bytes_per_pixel * h * w)}, more than the '
            f'budget of {mrnet_tiling.format_bytes(self.budget)}' if tile else '')
        while True:
            pad = max(self.tile_pad, _ALPHA_PAD) if c == 4 else self.tile_pad
            if tile:
                self.log(f'[mrnet] {w}x{h} image in tiles of {tile} px (overlap {pad} px): {reason}')
            try:
                out = tiled_upscale(self._run_tile, img, self.scale, tile, pad)
                self.last_tile = tile
                return out
            except Exception as err:  # noqa: BLE001  (out of memory anyway: smaller tiles, unless one was asked)
                smaller = [t for t in MEMORY_TILES if t < min(tile or max(h, w), max(h, w))]
                if self.tile or not is_out_of_memory(err) or not smaller:
                    raise
                if self.device.type == 'cuda':
                    torch.cuda.empty_cache()
                reason = f'out of memory with {f"tiles of {tile}" if tile else "the whole image"}'
                tile = smaller[0]

    def upscale_file(self, src, dst, max_pixels=None):
        """Super-resolve an image file into ``dst`` (format from its extension; written atomically), keeping
        its bit depth, gray or alpha, and carrying its ICC profile and EXIF data (orientation 1).

        Args:
            src (str): Input image file.
            dst (str): Output file.
            max_pixels (int | None): Refuse inputs with more pixels (``images.read_image``). Default:
                ``images.MAX_PIXELS``.

        Returns:
            np.ndarray: The output pixels.

        Raises:
            mrnet_arch.storage.images.ImageError: The input cannot be read (or is too large) or the output written.
        """
        img = images.read_image(src, max_pixels=max_pixels)
        out = self.upscale(img)
        images.write_image(dst, out, metadata=images.read_metadata(src))
        return out
