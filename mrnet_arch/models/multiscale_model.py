"""Model class for multi-scale MRNet training and testing (section 4.5)."""
import copy

from basicsr.utils.registry import MODEL_REGISTRY

from mrnet_arch.models.mrnet_model import MRNetModel


@MODEL_REGISTRY.register()
class MultiScaleMRNetModel(MRNetModel):
    """MRNetModel for a network with several scales (``MultiScaleMRNet``: ``upscales`` and a settable
    ``upscale``).

    - Each batch runs at its own scale: ``feed_data`` sets the bare network's ``upscale`` (and the EMA
      network's) from ``data['scale']`` (``MultiScalePairedImageDataset``), or, for data without it, from
      the top-level ``scale`` option.
    - Validation and testing run each val/test set at its scale, and every metric's ``crop_border`` is
      set to that scale (the convention of the published tables), whatever the YAML says.

    Args:
        opt (dict): Options.
    """

    def _nets(self):
        nets = [self.get_bare_model(self.net_g)]
        if hasattr(self, 'net_g_ema'):
            nets.append(self.get_bare_model(self.net_g_ema))
        return nets

    def set_scale(self, scale):
        """Make the network(s) run at ``scale``.

        Raises:
            ValueError: The network has no such scale.
        """
        scale = int(scale)
        for net in self._nets():
            supported = getattr(net, 'upscales', None)
            if supported is None:
                raise TypeError(f'{type(net).__name__} has no "upscales": MultiScaleMRNetModel needs a multi-scale '
                                'network such as MultiScaleMRNet')
            if scale not in supported:
                raise ValueError(f'scale {scale} is not one of the network\'s upscales {tuple(supported)}')
            net.upscale = scale
        self.scale = scale

    def feed_data(self, data):
        if 'scale' in data:
            scales = {int(s) for s in data['scale']}
            if len(scales) != 1:
                raise ValueError(f'a batch mixes scales {sorted(scales)}; each batch must have one scale')
            self.set_scale(scales.pop())
        elif self.opt.get('scale') is not None:
            self.set_scale(self.opt['scale'])
        super().feed_data(data)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        dataset = dataloader.dataset
        scales = getattr(dataset, 'scales', None)
        scales = [self.opt['scale']] if scales is None and self.opt.get('scale') else scales
        if not scales or len(scales) != 1:
            raise ValueError(f"val/test set {dataset.opt['name']}: give it one scale (type "
                             'MultiScalePairedImageDataset with scales: [s])')
        scale = int(scales[0])
        self.set_scale(scale)
        metrics = self.opt['val'].get('metrics')
        if metrics is None:
            return super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        saved = copy.deepcopy(metrics)
        for metric in metrics.values():
            metric['crop_border'] = scale
        try:
            return super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self.opt['val']['metrics'] = saved
