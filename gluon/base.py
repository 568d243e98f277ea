"""What every octave Gluon model shares: named units, the head, checked loading."""
import mxnet as mx
import numpy as np
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..utils.octave import check_ratio, split_channels

__all__ = ['OctaveModel', 'CheckpointMismatch', 'octave_channels', 'trainable_parameters',
           'global_pool']


class CheckpointMismatch(ValueError):
    """A parameter file that does not belong to this model, ratio or options."""


def octave_channels(channels, ratio):
    """``(high, low)`` of ``channels`` at ``ratio``, with -1 for an absent part."""
    return tuple(c if c > 0 else -1 for c in split_channels(channels, ratio))


def global_pool(F, x):
    """Global average pooling (N, C, H, W) -> (N, C, 1, 1) (exports to ONNX GlobalAveragePool)."""
    return F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type='avg')


def trainable_parameters(net):
    """Number of trainable values (BatchNorm running statistics and frozen scales excluded)."""
    return sum(int(np.prod(p.shape)) for p in net.collect_params().values()
               if p.grad_req != 'null')


class OctaveModel(HybridBlock):
    """Base of the models: units registered under their released names, run in order.

    Subclasses call :meth:`add_unit` for each ``L<stage>_B<index>`` block in
    order; ``run_units`` feeds the (high, low) pair through them.
    ``model_name`` and ``ratio`` are kept for error messages; ratio -1 (the
    Symbol API's "vanilla") is read as 0, the same network.
    """

    def __init__(self, model_name, ratio, prefix):
        super().__init__(prefix=prefix)
        self.model_name = model_name
        self.ratio = max(check_ratio(ratio, '%s: ratio' % model_name), 0.)  # -1 = vanilla = 0
        self.unit_names = []

    def add_unit(self, name, block):
        """Register ``block`` as ``name`` (its structural parameter prefix) and run it next."""
        if name in self._children:
            raise ValueError('%s: unit %s registered twice' % (self.model_name, name))
        self.register_child(block, name)
        self.unit_names.append(name)

    def run_units(self, x):
        """Feed the pair ``x`` = (high, low) through every unit."""
        for name in self.unit_names:
            x = self._children[name](*x)
        return x

    def make_head(self, in_channels, classes, final_drop):
        """Dropout (if any), the 1x1-conv classifier ``classifer`` and Flatten.

        The released checkpoints spell the attribute ``classifer``; its exported
        names are ``<prefix>classifier_weight`` / ``_bias``.
        """
        self.drop = nn.Dropout(final_drop) if final_drop > 0 else None
        self.classifer = nn.Conv2D(channels=classes, kernel_size=1, in_channels=in_channels,
                                   prefix='classifier_')
        self.flat = nn.Flatten()

    def classify(self, pooled):
        """(N, C, 1, 1) pooled features -> (N, classes) logits."""
        if self.drop is not None:
            pooled = self.drop(pooled)
        return self.flat(self.classifer(pooled))

    def load_parameters(self, filename, ctx=None, allow_missing=False, ignore_extra=False,
                        cast_dtype=False, dtype_source='current'):
        """``HybridBlock.load_parameters`` that first checks names and shapes.

        Raises :class:`CheckpointMismatch` naming the model, the ratio and the
        first parameter that is missing, unexpected or of another shape.
        """
        loaded = mx.nd.load(filename)
        if not isinstance(loaded, dict):
            raise CheckpointMismatch('%s holds no named parameters' % filename)
        loaded = {k.split(':', 1)[-1]: v for k, v in loaded.items()}
        expected = {name: p.shape for name, p in self._collect_params_with_prefix().items()}
        where = '%s (ratio %s) cannot load %s' % (self.model_name, self.ratio, filename)
        for name in sorted(expected):
            if name not in loaded:
                if not allow_missing:
                    raise CheckpointMismatch('%s: parameter %s is missing from the file'
                                             % (where, name))
            elif tuple(loaded[name].shape) != tuple(expected[name]):
                raise CheckpointMismatch('%s: parameter %s has shape %s in the file, the model '
                                         'needs %s' % (where, name, tuple(loaded[name].shape),
                                                       tuple(expected[name])))
        extra = sorted(set(loaded) - set(expected))
        if extra and not ignore_extra:
            raise CheckpointMismatch('%s: the file has parameter %s, which the model does not '
                                     'have' % (where, extra[0]))
        super().load_parameters(filename, ctx=ctx, allow_missing=allow_missing,
                                ignore_extra=ignore_extra, cast_dtype=cast_dtype,
                                dtype_source=dtype_source)
