"""What every octave Gluon model shares: named units, the head, checked loading."""
import mxnet as mx
import numpy as np
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ..utils.octave import check_ratio, crops_are_noops, graph_options, split_channels
from ..utils.params import CheckpointMismatch, check_parameters, read_parameter_file
from .nn import Adapter, OctaveBlock

__all__ = ['OctaveModel', 'Backbone', 'CheckpointMismatch', 'read_parameter_file',
           'check_parameters', 'octave_channels', 'batchnorm_kwargs', 'refuse_options',
           'trainable_parameters',
           'global_pool']


def octave_channels(channels, ratio):
    """``(high, low)`` of ``channels`` at ``ratio``, with -1 for an absent part."""
    return tuple(c if c > 0 else -1 for c in split_channels(channels, ratio))


def refuse_options(model_name, **options):
    """ValueError naming ``model_name`` and the first option set to True that it does not
    have (every model takes the same keyword arguments: those it lacks must stay False)."""
    for option, value in sorted(options.items()):
        if value:
            raise ValueError('%s has no %s variant (%s=True)' % (
                model_name, {'use_se': 'squeeze-excitation', 'last_gamma': 'zero-init last '
                             'BatchNorm'}.get(option, option), option))


def batchnorm_kwargs(norm_kwargs, use_global_stats):
    """BatchNorm keyword arguments of a model: ``norm_kwargs`` plus ``use_global_stats``."""
    kwargs = dict(norm_kwargs or {})
    if use_global_stats:
        kwargs['use_global_stats'] = True
    return kwargs


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
    order and define :meth:`stem` and :meth:`head`; the forward pass is
    ``head(units(stem(x)))`` on (high, low) pairs.
    ``model_name`` and ``ratio`` are kept for error messages; ratio 0 is the vanilla
    network (-1, the reference's name for it, is read as 0).
    """

    def __init__(self, model_name, ratio, prefix):
        super().__init__(prefix=prefix)
        self.model_name = model_name
        self.ratio = max(check_ratio(ratio, '%s: ratio' % model_name), 0.)  # -1 = vanilla = 0
        self.unit_names = []
        self.graph_mode = 'optimized'
        self._graph = None           # the Graph the blocks (and the cached graph) build now
        self._crop_free_sizes = {}   # (H, W) -> whether every crop is a no-op there

    def set_graph(self, mode):
        """Build the ``mode`` graph from now on: 'optimized' (the default) or
        'straightforward' (the graph as the equations read); the cached graph is dropped."""
        self.graph_mode = graph_options(mode).mode

    def _use_graph(self, graph):
        """Make every octave block of the model build ``graph``; drop the cached graph when
        it changes."""
        if graph != self._graph:
            self._clear_cached_op()
            self._graph = graph
            self.apply(lambda block: setattr(block, 'graph', graph)
                       if isinstance(block, OctaveBlock) else None)

    def forward(self, x, *args):
        """Run the model in its graph mode (:meth:`set_graph`).

        On an NDArray, the optimized graph leaves out the crops that odd sizes need
        when every map of this input size has even sides (checked once per size on
        the traced graph), and the cached graph is rebuilt when that changes. On a
        Symbol, the graph of every input size is traced.
        """
        if not isinstance(x, mx.nd.NDArray):
            self._use_graph(graph_options(self.graph_mode))
            return super().forward(x, *args)
        even = self.graph_mode == 'optimized' and self._crop_free(x.shape)
        self._use_graph(graph_options(self.graph_mode, even))
        return super().forward(x, *args)

    def _crop_free(self, shape):
        size = tuple(shape[2:])
        if size not in self._crop_free_sizes:
            self._use_graph(graph_options('optimized'))
            traced = super().forward(mx.sym.var('data'))
            self._crop_free_sizes[size] = crops_are_noops(traced, (1,) + tuple(shape[1:]))
        return self._crop_free_sizes[size]

    def export_graph(self, data_shape=None):
        """``(symbol, {name: NDArray})``: what :meth:`export` writes, without the files.

        The symbol is traced afresh, in the model's graph mode, and needs no
        earlier forward call. It takes every input size, unless ``data_shape``
        (N, C, H, W) is given: then the optimized graph is specialised to that
        size (see :meth:`forward`), for deployment at one size.
        """
        even = data_shape is not None and self.graph_mode == 'optimized' and \
            self._crop_free(data_shape)
        self._use_graph(graph_options(self.graph_mode, even))
        symbol = super().forward(mx.sym.var('data'))
        names = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
        return symbol, {name: param._reduce() for name, param in self.collect_params().items()
                        if name in names}

    def export(self, path, epoch=0, remove_amp_cast=True, data_shape=None):
        """Write ``path-symbol.json`` and ``path-%04d.params`` like ``HybridBlock.export``,
        the graph of :meth:`export_graph`."""
        symbol, params = self.export_graph(data_shape)
        symbol.save('%s-symbol.json' % path, remove_amp_cast=remove_amp_cast)
        args = set(symbol.list_arguments())
        mx.nd.save('%s-%04d.params' % (path, epoch),
                   {('arg:%s' if name in args else 'aux:%s') % name: value
                    for name, value in params.items()})

    def add_unit(self, name, block):
        """Register ``block`` as ``name`` (its structural parameter prefix) and run it next."""
        if name in self._children:
            raise ValueError('%s: unit %s registered twice' % (self.model_name, name))
        self.register_child(block, name)
        self.unit_names.append(name)

    # The stride of the first stage's output; stage s ends at first_stride * 2**(s-1).
    first_stride = 4

    def stem(self, F, x):
        """(N, 3, H, W) image -> the (high, low) pair the first unit takes."""
        raise NotImplementedError

    def head(self, F, x):
        """The last unit's (high, low) pair -> (N, classes) logits."""
        raise NotImplementedError

    def stage_stride(self, unit_name):
        """Output stride of the stage a unit ``L<stage>_B<index>`` belongs to."""
        return self.first_stride * 2 ** (int(unit_name[1:].split('_')[0]) - 1)

    def hybrid_forward(self, F, x):
        x = self.stem(F, x)
        for name in self.unit_names:
            x = self._children[name](*x)
        return self.head(F, x)

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
        self.load_parameter_dict(read_parameter_file(filename), filename, ctx, allow_missing,
                                 ignore_extra, cast_dtype, dtype_source)

    def load_parameter_dict(self, loaded, source, ctx=None, allow_missing=False,
                            ignore_extra=False, cast_dtype=False, dtype_source='current'):
        """Check, then load ``loaded`` = ``{structural name: NDArray}`` read from ``source``."""
        params = self._collect_params_with_prefix()
        check_parameters(loaded, {name: p.shape for name, p in params.items()},
                         '%s (ratio %s)' % (self.model_name, self.ratio), source,
                         allow_missing=allow_missing, ignore_extra=ignore_extra)
        for name, param in params.items():
            if name in loaded:   # what HybridBlock.load_parameters does after its own read
                param._load_init(loaded[name], ctx, cast_dtype=cast_dtype,
                                 dtype_source=dtype_source)


class Backbone(HybridBlock):
    """A model's feature maps at chosen strides, each merged into one tensor.

    Shares the model's parameters. At the end of each stage whose output stride
    is in ``strides``, the (high, low) pair is merged (low upsampled to the high
    size and concatenated) into a node named ``<model prefix>stride<s>``, so
    ``gluoncv.nn.feature.FeatureExtractor(Backbone(net), ['stride8', 'stride16'])``
    finds it. Imperatively, returns the tuple of (N, C_s, H/s, W/s) maps in
    stride order; traced, a grouped symbol.
    """

    def __init__(self, model, strides=(8, 16, 32)):
        super().__init__(prefix=model.prefix)
        available = sorted({model.stage_stride(name) for name in model.unit_names})
        unknown = sorted(set(strides) - set(available))
        if unknown:
            raise ValueError('%s has no stage with output stride %s; strides: %s'
                             % (model.model_name, ', '.join(map(str, unknown)), available))
        self.model = model
        self.strides = tuple(sorted(strides))
        self.merge = Adapter()

    def hybrid_forward(self, F, x):
        model, features = self.model, []
        names = model.unit_names
        x = model.stem(F, x)
        for position, name in enumerate(names):
            x = model._children[name](*x)
            stride = model.stage_stride(name)
            last_of_stage = (position + 1 == len(names)
                             or model.stage_stride(names[position + 1]) != stride)
            if last_of_stage and stride in self.strides:
                features.append(F.identity(self.merge(*x), name='stride%d' % stride))
            if len(features) == len(self.strides):
                break
        return F.Group(features) if F is mx.sym else tuple(features)
