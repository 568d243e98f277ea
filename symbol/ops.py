"""Two op sets with the same names: ``plain`` (single symbols) and ``octave``.

A network is written once against an op set and ``ops_for(ratio)`` picks it,
as the reference's ``import symbol_octconv as sym`` did::

    sym = ops_for(ratio)
    x = sym.Conv_BN_ACT(x, num_filter=channels_for(64, ratio), kernel=(3, 3),
                        pad=(1, 1), name='L2_B01_conv2')

Octave ops take and return ``(high, low)`` tuples of symbols: ``high`` is
(N, C_h, H, W), ``low`` (N, C_l, ceil(H/2), ceil(W/2)); a part may be ``None``.
A single symbol given to an octave op is read as ``(symbol, None)``. The tuples
they return are :class:`OctaveMap`\ s, which carry their channel counts forward, so
a network builds in time linear in its depth (a tuple without them, or a single
symbol, has its channels inferred from the graph built so far). Channel
counts are ``(high, low)`` pairs (0 = absent part). Parameter names follow the
released checkpoints: ``<name>-h`` / ``<name>-l`` per part, ``<name>-h2l`` per path.

BatchNorm defaults are the reference's: momentum 0.92, eps 1e-4, learnt gamma,
optional zero-initialised gamma.
"""
import mxnet as mx

from ..utils.octave import (OPTIMIZED, add, check_ratio, concat_channels, octave_conv,
                            octave_dense, octave_pool, plan_octave_conv, plan_octave_dense,
                            split_channels)

__all__ = ['PlainOps', 'OctaveOps', 'OctaveMap', 'plain', 'octave', 'ops_for', 'block_ops',
           'channels_for', 'block_ratio', 'as_pair', 'single']

BN_MOMENTUM = 0.92
BN_EPS = 1e-4
# Channel counts do not depend on the spatial size: an ImageNet-shaped ``data`` lets the
# octave ops infer their input channels from the graph built so far.
NOMINAL_DATA_SHAPE = (1, 3, 224, 224)


def block_ratio(ratio):
    """The ratio a network passes to its blocks: the vanilla network (ratio 0, or -1 as the
    reference writes it) is -1, which builds plain ops on single symbols; inside an octave
    network, 0 builds octave ops whose low part is absent (its last stage)."""
    return -1 if check_ratio(ratio) <= 0 else ratio


def channels_for(channels, ratio):
    """``channels`` for the vanilla network (ratio -1), else its ``(high, low)`` split."""
    check_ratio(ratio)
    return channels if ratio < 0 else split_channels(channels, ratio)


def as_pair(data):
    """``(high, low)`` from a tuple or a single symbol (read as ``(symbol, None)``)."""
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError('an octave map is a (high, low) pair, got a tuple of %d' % len(data))
        return data
    return (data, None)


def single(data, where):
    """The one symbol of ``data`` (a symbol or a pair without its low part)."""
    high, low = as_pair(data)
    if low is not None or high is None:
        raise ValueError('%s needs a single feature map, got an octave pair with a %s part'
                         % (where, 'low' if low is not None else 'missing high'))
    return high


def _batch_norm(data, name, zero_init_gamma=False, fix_gamma=False, momentum=BN_MOMENTUM,
                eps=BN_EPS):
    if zero_init_gamma and fix_gamma:
        raise ValueError('BatchNorm %s: zero_init_gamma needs a learnt gamma (fix_gamma=False)'
                         % name)
    extra = {}
    if zero_init_gamma:
        extra['gamma'] = mx.sym.Variable('%s_gamma' % name, init=mx.init.Constant(0.))
    return mx.sym.BatchNorm(data=data, fix_gamma=fix_gamma, momentum=momentum, eps=eps,
                            name=name, **extra)


class PlainOps:
    """The vanilla op set: ``mx.sym`` ops on single symbols, plus the composites.

    ``graph`` (a :class:`~octconv.utils.octave.Graph`) is the graph it builds."""

    is_octave = False

    def __init__(self, graph=OPTIMIZED):
        self.graph = graph

    def Convolution(self, data, num_filter, kernel, stride=(1, 1), pad=(0, 0), num_group=1,
                    no_bias=True, name=None):
        """``mx.sym.Convolution``."""
        return mx.sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, stride=stride,
                                  pad=pad, num_group=num_group, no_bias=no_bias, name=name)

    def FullyConnected(self, data, num_hidden, no_bias=True, name=None):
        """``mx.sym.FullyConnected`` (flattens its input)."""
        return mx.sym.FullyConnected(data=data, num_hidden=num_hidden, no_bias=no_bias, name=name)

    def BatchNorm(self, data, name, zero_init_gamma=False, **kwargs):
        """``mx.sym.BatchNorm`` with momentum 0.92, eps 1e-4 and optional zero-init gamma."""
        return _batch_norm(data, name, zero_init_gamma, **kwargs)

    def Activation(self, data, act_type='relu', name=None):
        """``mx.sym.Activation``."""
        return mx.sym.Activation(data=data, act_type=act_type, name=name)

    def Pooling(self, data, name=None, **kwargs):
        """``mx.sym.Pooling``."""
        return mx.sym.Pooling(data=data, name=name, **kwargs)

    def expand_dims(self, data, axis, name=None):
        """``mx.sym.expand_dims``."""
        return mx.sym.expand_dims(data, axis=axis, name=name)

    def ElementWiseSum(self, *args, name=None):
        """Sum of the maps (``elemwise_add`` of two in the optimized graph)."""
        return add(mx.sym, args, name=name, graph=self.graph)

    def Concat(self, *args, name=None, dim=1):
        """``mx.sym.Concat`` along channels."""
        return mx.sym.Concat(*args, dim=dim, name=name)

    def broadcast_mul(self, lhs, rhs, name=None):
        """``mx.sym.broadcast_mul``."""
        return mx.sym.broadcast_mul(lhs, rhs, name=name)

    # -- composites, written once for both op sets --------------------------------
    def BN_ACT(self, data, name, act_type='relu'):
        """BatchNorm ``<name>_bn`` then Activation ``<name>_<act_type>``."""
        bn = self.BatchNorm(data, name='%s_bn' % name)
        return self.Activation(bn, act_type=act_type, name='%s_%s' % (name, act_type))

    def BN_ACT_Conv(self, data, num_filter, kernel, pad=(0, 0), stride=(1, 1), name=None,
                    no_bias=True, num_group=1, act_type='relu'):
        """Pre-activation unit: BN_ACT then Convolution ``<name>_conv``."""
        act = self.BN_ACT(data, name=name, act_type=act_type)
        return self.Convolution(act, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad,
                                num_group=num_group, no_bias=no_bias, name='%s_conv' % name)

    def Conv_BN(self, data, num_filter, kernel, pad=(0, 0), stride=(1, 1), name=None,
                no_bias=True, num_group=1, zero_init_gamma=False):
        """Convolution ``<name>_conv`` then BatchNorm ``<name>_bn``."""
        conv = self.Convolution(data, num_filter=num_filter, kernel=kernel, stride=stride,
                                pad=pad, num_group=num_group, no_bias=no_bias,
                                name='%s_conv' % name)
        return self.BatchNorm(conv, name='%s_bn' % name, zero_init_gamma=zero_init_gamma)

    def Conv_BN_ACT(self, data, num_filter, kernel, pad=(0, 0), stride=(1, 1), name=None,
                    no_bias=True, num_group=1, act_type='relu'):
        """Post-activation unit: Convolution ``<name>_conv`` then BN_ACT."""
        conv = self.Convolution(data, num_filter=num_filter, kernel=kernel, stride=stride,
                                pad=pad, num_group=num_group, no_bias=no_bias,
                                name='%s_conv' % name)
        return self.BN_ACT(conv, name=name, act_type=act_type)


class OctaveMap(tuple):
    """A ``(high, low)`` pair of symbols with its ``channels`` ``(C_h, C_l)`` (0 = absent
    part), or ``channels`` None where they are not known."""

    def __new__(cls, parts, channels=None):
        pair = super().__new__(cls, parts)
        pair.channels = None if channels is None else tuple(channels)
        return pair


def _known_channels(data):
    return getattr(data, 'channels', None)


def _per_part(op, data, name, **kwargs):
    """Apply ``op`` to each present part of ``data``, named ``<name>-h`` / ``<name>-l``; the
    channels stay those of ``data``."""
    return OctaveMap((None if x is None else op(x, name='%s-%s' % (name, suffix), **kwargs)
                      for x, suffix in zip(as_pair(data), 'hl')), _known_channels(data))


def _across(op, args, name, channels=None, **kwargs):
    """Combine part by part across several octave maps; a lone part passes through.
    ``channels`` gives the channels of the result from the arguments' ``channels``."""
    out = []
    for idx, suffix in enumerate('hl'):
        parts = [as_pair(a)[idx] for a in args]
        parts = [p for p in parts if p is not None]
        if not parts:
            out.append(None)
        elif len(parts) == 1:
            out.append(parts[0])
        else:
            out.append(op(*parts, name='%s-%s' % (name, suffix), **kwargs))
    known = [_known_channels(a) for a in args]
    return OctaveMap(out, channels(known) if channels and None not in known else None)


def _same_channels(known):
    """The channels of a part-wise sum: every operand's (parts absent in some count 0)."""
    return tuple(max(parts) for parts in zip(*known))


def _summed_channels(known):
    """The channels of a concatenation along channels."""
    return tuple(sum(parts) for parts in zip(*known))


def _infer_channels(x, **shapes):
    _, out_shapes, _ = x.infer_shape_partial(**shapes)
    shape = out_shapes[0] if out_shapes else ()
    return shape[1] if len(shape) > 1 else 0


def _channels_of(data, num_in, name):
    """``num_in``, or the (high, low) channels of ``data`` inferred from the graph.

    When the graph's ``data`` variable has no shape, channel counts (which do
    not depend on the spatial size) are inferred for an ImageNet-shaped input.
    """
    if num_in is not None:
        return num_in
    if _known_channels(data) is not None:
        return _known_channels(data)
    channels = []
    for x in as_pair(data):
        if x is None:
            channels.append(0)
            continue
        try:
            count = _infer_channels(x)   # honours a shape declared on the data variable
        except mx.MXNetError:
            count = 0                    # e.g. UpSampling needs the spatial size
        if count == 0 and 'data' in x.list_arguments():
            try:
                count = _infer_channels(x, data=NOMINAL_DATA_SHAPE)
            except mx.MXNetError as err:
                raise ValueError('layer %s: cannot infer the input channels (%s); pass num_in'
                                 % (name, str(err).splitlines()[0]))
        if count == 0:
            raise ValueError('layer %s: the input channels are unknown; give the data '
                             'variable a shape or pass num_in' % name)
        channels.append(count)
    return tuple(channels)


class OctaveOps(PlainOps):
    """The octave op set: same names as :class:`PlainOps`, on ``(high, low)`` tuples."""

    is_octave = True

    def Convolution(self, data, num_filter, kernel, stride=(1, 1), pad=(0, 0), num_group=1,
                    no_bias=True, name=None, num_in=None):
        """Octave convolution (paper Eq. 4) of ``data`` = (high, low).

        ``num_filter`` is ``(C_h, C_l)`` (an int means ``(int, 0)``); ``num_in``
        the input channels, inferred from the graph when not given. Weights are
        ``<name>-h2h_weight`` ... for the paths that exist. Returns ``(high, low)``.
        """
        high, low = as_pair(data)
        spec = plan_octave_conv(name, _channels_of(data, num_in, name), num_filter, kernel,
                                stride=stride, pad=pad, groups=num_group, use_bias=not no_bias)
        return OctaveMap(octave_conv(mx.sym, spec, high, low, _variables(spec), graph=self.graph),
                         spec.channels)

    def FullyConnected(self, data, num_hidden, no_bias=True, name=None, num_in=None):
        """Octave fully-connected layer over the flattened parts; returns (high, low)."""
        high, low = as_pair(data)
        spec = plan_octave_dense(name, _channels_of(data, num_in, name), num_hidden,
                                 use_bias=not no_bias)
        return OctaveMap(octave_dense(mx.sym, spec, high, low, _variables(spec), graph=self.graph),
                         spec.channels)

    def BatchNorm(self, data, name, zero_init_gamma=False, **kwargs):
        """BatchNorm of each part, ``<name>-h`` and ``<name>-l``."""
        return _per_part(_batch_norm, data, name, zero_init_gamma=zero_init_gamma, **kwargs)

    def Activation(self, data, act_type='relu', name=None):
        """Activation of each part."""
        return _per_part(lambda x, name: mx.sym.Activation(x, act_type=act_type, name=name),
                         data, name)

    def Pooling(self, data, name=None, **kwargs):
        """Pooling of each part with the same settings (see ``utils.octave.octave_pool``)."""
        return OctaveMap(octave_pool(mx.sym, *as_pair(data), name=name, graph=self.graph,
                                     **kwargs), _known_channels(data))

    def expand_dims(self, data, axis, name=None):
        """expand_dims of each part."""
        return _per_part(lambda x, name: mx.sym.expand_dims(x, axis=axis, name=name), data, name)

    def ElementWiseSum(self, *args, name=None):
        """Sum high with high and low with low."""
        return _across(lambda *parts, name: add(mx.sym, parts, name=name, graph=self.graph),
                       args, name, channels=_same_channels)

    def Concat(self, *args, name=None, dim=1):
        """Concatenate high with high and low with low along channels (``dim`` 1 only)."""
        if dim != 1:
            raise ValueError('%s: octave maps are concatenated along channels (dim=1), got dim=%r'
                             % (name, dim))
        return _across(lambda *parts, name: concat_channels(mx.sym, parts, name=name), args, name,
                       channels=_summed_channels)

    def broadcast_mul(self, lhs, rhs, name=None):
        """Multiply part by part (e.g. a map by its squeeze-excitation gates)."""
        return _across(mx.sym.broadcast_mul, (lhs, rhs), name,
                       channels=lambda known: known[0])


def _variables(spec):
    params = {}
    for path, p in spec.paths.items():
        prefix = '%s-%s' % (spec.name, path)
        weight = mx.sym.Variable(prefix + '_weight', shape=spec.weight_shape(path))
        bias = mx.sym.Variable(prefix + '_bias', shape=(p.channels,)) if p.use_bias else None
        params[path] = (weight, bias)
    return params


plain = PlainOps()
octave = OctaveOps()


def ops_for(ratio, graph=OPTIMIZED):
    """The op set of a network at ``ratio``, building ``graph``: the vanilla one for ratio 0
    (or -1, the reference's name for it), the octave one above."""
    return (PlainOps if check_ratio(ratio) <= 0 else OctaveOps)(graph)


def block_ops(ratio, graph=OPTIMIZED):
    """The op set inside a network's blocks, which take :func:`block_ratio`'s ratios: the
    vanilla one for -1, the octave one for 0 (an octave network's last stage, whose maps
    have no low part) and above."""
    return (PlainOps if check_ratio(ratio) < 0 else OctaveOps)(graph)
