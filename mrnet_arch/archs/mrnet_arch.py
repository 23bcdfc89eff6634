"""MRNet: Memory Recursive Network for Single Image Super-Resolution.

Paper: Memory Recursive Network for Single Image Super-Resolution, ACM MM 2020.

This file imports only torch, basicsr and its sibling ``mrnet_config.py`` (relatively), so the two can also be
copied into a BasicSR checkout's ``basicsr/archs/`` folder, where BasicSR's own scan registers the classes.
"""
import torch
from torch import nn as nn
from torch.nn import functional as F

from basicsr.archs.arch_util import ResidualBlockNoBN, make_layer
from basicsr.utils.registry import ARCH_REGISTRY
from .mrnet_config import PAPER_RECURSIONS  # noqa: F401  (re-exported)
from .mrnet_config import (BASELINE_MARKER, BODY_KERNEL, FUSION_CONV_KERNEL, FUSIONS, GLOBAL_SKIPS, RECURSIVE_MODULES,
                           SFE_KERNELS, recursions_per_scale, scale_key)


class ShallowFeatureExtraction(nn.Sequential):
    """Shallow feature extraction block, SFE (eq. 5): 7x7 conv, ReLU, 3x3 conv.

    Args:
        num_in_ch (int): Channel number of inputs.
        num_feat (int): Channel number of intermediate features.
    """

    def __init__(self, num_in_ch, num_feat):
        k1, k2 = SFE_KERNELS
        super().__init__(
            nn.Conv2d(num_in_ch, num_feat, k1, 1, k1 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(num_feat, num_feat, k2, 1, k2 // 2))


class ConvBlock(nn.Sequential):
    """ConvBlock f_CB of the MRM (eq. 9, Fig. 3): EDSR residual blocks followed by a 3x3 conv.

    Args:
        num_feat (int): Channel number of intermediate features.
        num_block (int): Number of EDSR residual blocks (no BN).
        res_scale (float): Residual scale of each residual block.
    """

    def __init__(self, num_feat, num_block, res_scale=1.):
        super().__init__(
            make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat, res_scale=res_scale),
            nn.Conv2d(num_feat, num_feat, BODY_KERNEL, 1, BODY_KERNEL // 2))


def _fill_missing_marker(module, state_dict, prefix, *args):
    """``load_state_dict`` pre-hook of a 'baseline' MRM: weights without the marker (saved before it existed)
    load as they did; the marker takes the module's own value."""
    state_dict.setdefault(prefix + BASELINE_MARKER, getattr(module, BASELINE_MARKER))


@ARCH_REGISTRY.register()
class MRM(nn.Module):
    """Memory recursive module (section 3.2, eq. 8-11).

    With ``recursive_module='mrm'`` one step is::

        m_i = f_IE([x_0, h_{i-1}])      (8)  input encoder, 1x1 conv
        r_i = f_CB(m_i)                 (9)  ConvBlock
        x_i = r_i + x_0                 (10)
        h_i = f_MU([r_i, h_{i-1}])      (11) memory updater, 1x1 conv

    with h_0 = x_0. The other values give the recursive modules of the ablation in Table 1,
    each a special case of the same module:

    - ``baseline`` (DRCN, eq. 1):            x_i = f_CB(x_{i-1})
    - ``residual`` (DRRN, eq. 3):            x_i = x_0 + f_CB(x_{i-1})
    - ``input_encoder`` (Fig. 5a):          x_i = x_0 + f_CB(f_IE([x_0, x_{i-1}]))
    - ``memory_updater`` (Fig. 5b):         x_i = x_0 + f_CB(h_{i-1}), h_i = f_MU([r_i, h_{i-1}])

    'baseline' has the same layers as 'residual'; a persistent buffer ``baseline`` (``BASELINE_MARKER``) marks
    it in the state dict, so that ``infer_config`` tells the two apart. Weights saved before the marker existed
    still load into a 'baseline' module (the missing marker is filled in while loading).

    Args:
        num_feat (int): Channel number of intermediate features.
        num_block (int): Number of residual blocks in the ConvBlock.
        res_scale (float): Residual scale of the residual blocks. Default: 1.
        recursive_module (str): One of ``RECURSIVE_MODULES``. Default: 'mrm'.
    """

    def __init__(self, num_feat, num_block, res_scale=1., recursive_module='mrm'):
        super().__init__()
        if recursive_module not in RECURSIVE_MODULES:
            raise ValueError(f'recursive_module must be one of {RECURSIVE_MODULES}, got {recursive_module!r}')
        self.recursive_module = recursive_module
        self.use_input_encoder = recursive_module in ('mrm', 'input_encoder')
        self.use_memory_updater = recursive_module in ('mrm', 'memory_updater')
        if self.use_input_encoder:
            self.input_encoder = nn.Conv2d(2 * num_feat, num_feat, 1)
        self.conv_block = ConvBlock(num_feat, num_block, res_scale)
        if self.use_memory_updater:
            self.memory_updater = nn.Conv2d(2 * num_feat, num_feat, 1)
        if recursive_module == 'baseline':
            self.register_buffer(BASELINE_MARKER, torch.ones(()))
            self.register_load_state_dict_pre_hook(_fill_missing_marker)

    def step(self, x0, state, update_state=True):
        """One recursion (eq. 6): ``x_i, state_i = f_MRM(x_0, state_{i-1})``.

        ``state`` is the memory h for 'mrm' and 'memory_updater', else the previous output x_{i-1}.
        With ``update_state=False`` the memory update of the last recursion, whose result nothing
        reads, is skipped (the returned state is then None).
        """
        if self.use_input_encoder:
            m = self.input_encoder(torch.cat([x0, state], dim=1))  # eq. 8
        else:
            m = state
        r = self.conv_block(m)  # eq. 9
        x = r if self.recursive_module == 'baseline' else r + x0  # eq. 10 (eq. 1 for the baseline)
        if not update_state:
            return x, None
        if self.use_memory_updater:
            return x, self.memory_updater(torch.cat([r, state], dim=1))  # eq. 11
        return x, x

    def forward(self, x0, num_recursion):
        """Unroll the MRM ``num_recursion`` (T) times with shared weights; returns [x_1, ..., x_T]."""
        outs, state = [], x0  # h_0 = x_0
        for i in range(num_recursion):
            x, state = self.step(x0, state, update_state=i < num_recursion - 1)
            outs.append(x)
        return outs


@ARCH_REGISTRY.register()
class ShuffleConv(nn.Module):
    """ShuffleConv (section 3.3, Fig. 4).

    The T recursion outputs are grouped by channel index (group j holds channel j of x_1..x_T),
    each group goes through its own linear layer (T -> s^2 channels) and ReLU, and PixelShuffle
    turns the s^2 channels of group j into channel j of the HR feature map. It is one grouped
    convolution with ``groups=num_feat``: ``T * num_feat * s^2`` weights (+ biases), 1/num_feat of
    a plain 1x1 convolution.

    Args:
        num_feat (int): Channel number of each recursion output (c0).
        num_recursion (int): Number of fused recursion outputs (T).
        upscale (int): Upsampling factor (s).
        kernel_size (int): Kernel size of the per-group layer. 1 is the linear layer of the text and
            Table 3; 3 reproduces the counts of Table 2. Default: 1.
    """

    def __init__(self, num_feat, num_recursion, upscale, kernel_size=1):
        super().__init__()
        self.fuse = nn.Conv2d(
            num_feat * num_recursion, num_feat * upscale**2, kernel_size, 1, kernel_size // 2, groups=num_feat)
        self.relu = nn.ReLU(inplace=True)
        self.pixel_shuffle = nn.PixelShuffle(upscale)

    def forward(self, feats):
        # Without gradients (inference) the 1x1 form runs as multiply-adds, which skip the copy of the stacked
        # outputs (11% of an fp32 forward less on one Intel Xeon thread); training keeps the grouped convolution,
        # whose backward is faster (2 to 5% per fp32 step on a 2-core AMD EPYC). Both give the same output.
        if self.fuse.kernel_size == (1, 1) and not torch.is_grad_enabled():
            return self.multiply_add(feats)
        return self.grouped_conv(feats)

    def grouped_conv(self, feats):
        """The definition: the T outputs stacked by channel index, one grouped convolution."""
        # [B, C, H, W] x T -> [B, C, T, H, W] -> [B, C*T, H, W]: channel j of every recursion is adjacent
        x = torch.stack(feats, dim=2).flatten(1, 2)
        return self.pixel_shuffle(self.relu(self.fuse(x)))

    def multiply_add(self, feats):
        """The 1x1 grouped convolution as T multiply-adds, without stacking the T outputs.

        Output channel j*s^2 + k is sum_t w[j*s^2 + k, t] * x_t[j] + b[j*s^2 + k]. Each x_t, seen as [B, H, W, C],
        times w_t of shape [C, s^2] gives [B, H, W, C, s^2], which is the channels_last [B, C*s^2, H, W] tensor.
        """
        c = self.fuse.groups
        weight = self.fuse.weight.view(c, -1, len(feats))  # [C, s^2, T]
        acc = torch.addcmul(self.fuse.bias.view(c, -1), feats[0].permute(0, 2, 3, 1).unsqueeze(-1), weight[..., 0])
        for t in range(1, len(feats)):
            acc = acc.addcmul(feats[t].permute(0, 2, 3, 1).unsqueeze(-1), weight[..., t])
        return self.pixel_shuffle(self.relu(acc.flatten(3).permute(0, 3, 1, 2)))


class Conv1x1Fusion(nn.Module):
    """The plain fusion of Table 2: 1x1 conv over the concatenated T outputs, 3x3 conv to s^2*C channels,
    ReLU and PixelShuffle.

    Args:
        num_feat (int): Channel number of each recursion output (c0).
        num_recursion (int): Number of fused recursion outputs (T).
        upscale (int): Upsampling factor (s).
    """

    def __init__(self, num_feat, num_recursion, upscale):
        super().__init__()
        self.fuse = nn.Conv2d(num_feat * num_recursion, num_feat, 1)
        self.conv = nn.Conv2d(num_feat, num_feat * upscale**2, FUSION_CONV_KERNEL, 1, FUSION_CONV_KERNEL // 2)
        self.relu = nn.ReLU(inplace=True)
        self.pixel_shuffle = nn.PixelShuffle(upscale)

    def forward(self, feats):
        return self.pixel_shuffle(self.relu(self.conv(self.fuse(torch.cat(feats, dim=1)))))


class Reconstruction(nn.Module):
    """Reconstruction block, RB (eq. 7): fusion of [x_1..x_T] (ShuffleConv), then f_RC = 3x3 conv, ReLU,
    3x3 conv to the output channels.

    Args:
        num_feat (int): Channel number of intermediate features.
        num_out_ch (int): Channel number of outputs.
        num_recursion (int): Number of recursion outputs (T).
        upscale (int): Upsampling factor.
        fusion (str): 'shuffleconv' or 'conv1x1' (Table 2 baseline). Default: 'shuffleconv'.
        shuffle_kernel (int): Kernel size of ShuffleConv. Default: 1.
    """

    def __init__(self, num_feat, num_out_ch, num_recursion, upscale, fusion='shuffleconv', shuffle_kernel=1):
        super().__init__()
        if fusion == 'shuffleconv':
            self.fusion = ShuffleConv(num_feat, num_recursion, upscale, shuffle_kernel)
        elif fusion == 'conv1x1':
            self.fusion = Conv1x1Fusion(num_feat, num_recursion, upscale)
        else:
            raise ValueError(f'fusion must be one of {FUSIONS}, got {fusion!r}')
        self.conv_hr = nn.Conv2d(num_feat, num_feat, BODY_KERNEL, 1, BODY_KERNEL // 2)
        self.relu = nn.ReLU(inplace=True)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, BODY_KERNEL, 1, BODY_KERNEL // 2)

    def forward(self, feats):
        return self.conv_last(self.relu(self.conv_hr(self.fusion(feats))))


class GlobalSkip(nn.Module):
    """Optional global skip, beyond the paper: an upsampled copy of the (normalised) input added to the output,
    so that the network learns a residual from the first iteration.

    - 'bicubic': bicubic interpolation (``F.interpolate``). It has no weights, so a persistent buffer
      ``bicubic`` marks it in the state dict: weights trained with it do not load into a network without it.
    - 'learned': one learned layer, a 3x3 conv to ``num_out_ch * s^2`` channels and PixelShuffle.

    Args:
        mode (str): 'bicubic' or 'learned'.
        num_in_ch (int): Channel number of inputs.
        num_out_ch (int): Channel number of outputs.
        upscale (int): Upsampling factor.
    """

    def __init__(self, mode, num_in_ch, num_out_ch, upscale):
        super().__init__()
        if mode not in GLOBAL_SKIPS[1:]:
            raise ValueError(f'global_skip must be one of {GLOBAL_SKIPS}, got {mode!r}')
        self.mode, self.upscale = mode, upscale
        if mode == 'bicubic':
            if num_in_ch != num_out_ch:
                raise ValueError(f'a bicubic global_skip needs num_in_ch == num_out_ch, got {num_in_ch}, {num_out_ch}')
            self.register_buffer('bicubic', torch.ones(()))
        else:
            self.conv = nn.Conv2d(num_in_ch, num_out_ch * upscale**2, BODY_KERNEL, 1, BODY_KERNEL // 2)
            self.pixel_shuffle = nn.PixelShuffle(upscale)

    def forward(self, x):
        if self.mode == 'bicubic':
            return F.interpolate(x, scale_factor=self.upscale, mode='bicubic', align_corners=False)
        return self.pixel_shuffle(self.conv(x))


class _MeanShift(nn.Module):
    """Shared normalisation of the BasicSR SR archs: (x - mean) * img_range; the mean is no parameter or
    buffer, so it stays out of the state dict (as in BasicSR's EDSR)."""

    def __init__(self, img_range, rgb_mean):
        super().__init__()
        self.img_range = img_range
        self.mean = torch.Tensor(rgb_mean).view(1, -1, 1, 1)

    def _mean(self, x):
        if x.size(1) != self.mean.size(1):  # e.g. a 1-channel model: no mean shift per RGB channel
            return x.new_zeros(())
        return self.mean.to(x)

    def normalize(self, x):
        return (x - self._mean(x)) * self.img_range

    def denormalize(self, x):
        x = x.float()  # under bf16/fp16 autocast the last conv is half precision; the image is not rounded to it
        return x / self.img_range + self._mean(x)


@ARCH_REGISTRY.register()
class MRNet(_MeanShift):
    """MRNet with a single scale (the paper's MRNet-S, Fig. 1).

    SFE (eq. 5) -> MRM unrolled T times with shared weights (eq. 6, 8-11) -> ShuffleConv over
    [x_1..x_T] -> reconstruction convs (eq. 7). The paper uses num_feat=64, num_block=10 and
    T = 4 / 6 / 8 for x2 / x3 / x4 (section 4.1): 878,339 / 881,091 / 886,275 parameters.

    Args:
        num_in_ch (int): Channel number of inputs. Default: 3.
        num_out_ch (int): Channel number of outputs. Default: 3.
        num_feat (int): Channel number of intermediate features (c0). Default: 64.
        num_block (int): Number of residual blocks in the ConvBlock. Default: 10.
        upscale (int): Upsampling factor. Default: 2.
        num_recursion (int): Number of recursions T. Default: 4.
        recursive_module (str): 'mrm' (default) or a Table 1 ablation: 'baseline', 'residual',
            'input_encoder', 'memory_updater'.
        fusion (str): 'shuffleconv' (default) or 'conv1x1' (Table 2 baseline).
        shuffle_kernel (int): Kernel size of ShuffleConv. Default: 1.
        res_scale (float): Residual scale of the residual blocks. Default: 1.
        img_range (float): Image range. Default: 255.
        rgb_mean (tuple[float]): Image mean in RGB orders. Default: DIV2K mean (0.4488, 0.4371, 0.4040).
        global_skip (str | None): Beyond the paper: None (the paper's architecture), 'bicubic' or 'learned'
            (see GlobalSkip). Default: None.
    """

    def __init__(self,
                 num_in_ch=3,
                 num_out_ch=3,
                 num_feat=64,
                 num_block=10,
                 upscale=2,
                 num_recursion=4,
                 recursive_module='mrm',
                 fusion='shuffleconv',
                 shuffle_kernel=1,
                 res_scale=1.,
                 img_range=255.,
                 rgb_mean=(0.4488, 0.4371, 0.4040),
                 global_skip=None):
        super().__init__(img_range, rgb_mean)
        self.upscale = upscale
        self.num_recursion = num_recursion
        self.sfe = ShallowFeatureExtraction(num_in_ch, num_feat)
        self.mrm = MRM(num_feat, num_block, res_scale, recursive_module)
        self.reconstruction = Reconstruction(num_feat, num_out_ch, num_recursion, upscale, fusion, shuffle_kernel)
        if global_skip is not None:
            self.global_skip = GlobalSkip(global_skip, num_in_ch, num_out_ch, upscale)

    def forward(self, x):
        x = self.normalize(x)
        x0 = self.sfe(x)  # eq. 5
        feats = self.mrm(x0, self.num_recursion)  # eq. 6
        out = self.reconstruction(feats)  # eq. 7
        if hasattr(self, 'global_skip'):
            out = out + self.global_skip(x)
        return self.denormalize(out)


@ARCH_REGISTRY.register()
class MultiScaleMRNet(_MeanShift):
    """The paper's final, multi-scale MRNet (section 4.5): one MRM shared by all scales, a SFE and a
    reconstruction block (with its ShuffleConv) per scale, and a recursion count per scale. With
    scales 2/3/4 and T = 4/6/8 it has 1,061,705 parameters.

    ``forward(x, scale=None)`` runs the given scale, or ``self.upscale`` when none is given (it
    defaults to the first scale and can be set, e.g. by a multi-scale training model).

    Args:
        num_in_ch (int): Channel number of inputs. Default: 3.
        num_out_ch (int): Channel number of outputs. Default: 3.
        num_feat (int): Channel number of intermediate features (c0). Default: 64.
        num_block (int): Number of residual blocks in the ConvBlock. Default: 10.
        upscales (tuple[int]): Supported upsampling factors. Default: (2, 3, 4).
        num_recursions (tuple[int]): Recursion count T of each scale. Default: (4, 6, 8).
        upscale (int | None): Scale used when forward is given none. Default: the first of upscales.
        recursive_module (str): See MRNet. Default: 'mrm'.
        fusion (str): See MRNet. Default: 'shuffleconv'.
        shuffle_kernel (int): See MRNet. Default: 1.
        res_scale (float): Residual scale of the residual blocks. Default: 1.
        img_range (float): Image range. Default: 255.
        rgb_mean (tuple[float]): Image mean in RGB orders. Default: DIV2K mean.
        global_skip (str | None): See MRNet; one per scale. Default: None.
    """

    def __init__(self,
                 num_in_ch=3,
                 num_out_ch=3,
                 num_feat=64,
                 num_block=10,
                 upscales=(2, 3, 4),
                 num_recursions=(4, 6, 8),
                 upscale=None,
                 recursive_module='mrm',
                 fusion='shuffleconv',
                 shuffle_kernel=1,
                 res_scale=1.,
                 img_range=255.,
                 rgb_mean=(0.4488, 0.4371, 0.4040),
                 global_skip=None):
        super().__init__(img_range, rgb_mean)
        self.num_recursions = recursions_per_scale(upscales, num_recursions)
        upscales = list(self.num_recursions)
        self.upscale = upscales[0] if upscale is None else int(upscale)
        if self.upscale not in self.num_recursions:
            raise ValueError(f'upscale {self.upscale} is not one of upscales {upscales}')
        self.sfe = nn.ModuleDict({scale_key(s): ShallowFeatureExtraction(num_in_ch, num_feat) for s in upscales})
        self.mrm = MRM(num_feat, num_block, res_scale, recursive_module)
        self.reconstruction = nn.ModuleDict({
            scale_key(s):
            Reconstruction(num_feat, num_out_ch, t, s, fusion, shuffle_kernel)
            for s, t in self.num_recursions.items()
        })
        if global_skip is not None:
            self.global_skip = nn.ModuleDict(
                {scale_key(s): GlobalSkip(global_skip, num_in_ch, num_out_ch, s)
                 for s in upscales})

    @property
    def upscales(self):
        return tuple(self.num_recursions)

    def forward(self, x, scale=None):
        scale = self.upscale if scale is None else int(scale)
        if scale not in self.num_recursions:
            raise ValueError(f'scale {scale} is not one of {self.upscales}')
        x = self.normalize(x)
        x0 = self.sfe[scale_key(scale)](x)
        feats = self.mrm(x0, self.num_recursions[scale])
        out = self.reconstruction[scale_key(scale)](feats)
        if hasattr(self, 'global_skip'):
            out = out + self.global_skip[scale_key(scale)](x)
        return self.denormalize(out)
