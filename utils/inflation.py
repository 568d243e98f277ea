"""Which parameter of a 3-D (video) network is which parameter of the 2-D network it
inflates, found from the two graphs, not from names.

A parameter's role is where it sits: the number of convolutions and fully-connected
layers on the longest path from the data to its layer (the layer's depth), the operator
that takes it and the input it is, and its octave path or part (``h2l``, ``l``), read from
the end of its name in both naming styles (``conv1_h2l_weight``, ``conv1-h2l_weight``); the
high part or path is the layer's own (a vanilla layer in one network may be an octave layer
with no low part in the other).
Layers of the 3-D network that the 2-D one does not have (a non-local block, named by
``skip``) count for no depth and take no 2-D parameter. Two parameters with the same role
are told apart by their shapes; where they cannot be, the pairing is refused rather than
guessed, and so is a pair of convolutions that act differently on height and width (a
stride in one, a pooling and no stride in the other): the 3-D network would not compute
what the 2-D one does.
"""
import json
import re

from .flops import attr_tuple

__all__ = ['pair_parameters', 'inflated_shape']

_DEEPENING = ('Convolution', 'FullyConnected', 'Deconvolution')
_KIND = {'FullyConnected': 'Convolution'}
_PATH = re.compile(r'[-_](h2h|h2l|l2h|l2l|h|l)_(weight|bias|gamma|beta|running_mean|'
                   r'running_var|moving_mean|moving_var|alpha)$')


def inflated_shape(shape_2d, shape_3d):
    """Whether ``shape_3d`` is ``shape_2d`` (O, I, kh, kw) with a temporal axis inserted
    (O, I, kt, kh, kw), ``shape_2d`` itself, or the same values shaped as a fully-connected
    layer's (O, I) or a 1x1 convolution's."""
    shape_2d, shape_3d = tuple(shape_2d), tuple(shape_3d)
    if shape_2d == shape_3d:
        return True
    if len(shape_3d) == 5 and len(shape_2d) == 4:
        return shape_3d[:2] + shape_3d[3:] == shape_2d
    return shape_2d[:2] == shape_3d[:2] and \
        all(k == 1 for k in shape_2d[2:]) and all(k == 1 for k in shape_3d[2:])


def _spatial(node):
    """The settings of a convolution that act on its last two (spatial) axes, and its groups:
    what a 2-D layer and its inflated 3-D layer have alike."""
    attrs = node.get('attrs', {})
    if node['op'] not in ('Convolution', 'Deconvolution'):
        return None
    def last_two(key, default):
        values = attr_tuple(attrs.get(key), default)
        return tuple(values[-2:]) if len(values) > 1 else tuple(values) * 2
    return {'kernel': last_two('kernel', (1,)), 'stride': last_two('stride', (1,)),
            'pad': last_two('pad', (0,)), 'dilate': last_two('dilate', (1,)),
            'groups': int(attrs.get('num_group', 1))}


def _roles(symbol, skip):
    """``{parameter: role}`` of ``symbol``'s parameters (see the module), leaving out the
    layers whose parameters match ``skip``; the names of the classifier's parameters (those
    of the deepest layer); and ``{parameter: its convolution's spatial settings}``."""
    nodes = json.loads(symbol.tojson())['nodes']
    depth, roles, settings = [0] * len(nodes), {}, {}
    for i, node in enumerate(nodes):
        if node['op'] == 'null':
            continue
        depth[i] = max((depth[e[0]] for e in node['inputs']), default=0)
        params = [(slot, nodes[e[0]]['name']) for slot, e in enumerate(node['inputs'])
                  if slot > 0 and nodes[e[0]]['op'] == 'null']
        skipped = skip is not None and any(re.search(skip, name) for _, name in params)
        if node['op'] in _DEEPENING and not skipped:
            depth[i] += 1
        if skipped:
            continue
        for slot, name in params:
            match = _PATH.search(name)
            path = match.group(1) if match else ''
            # a high part or path is the layer itself where one network's layer has no low
            # part (a vanilla layer in one, an octave one at ratio 0 in the other); a
            # classifier may be a fully-connected layer or a 1x1 convolution
            roles[name] = (depth[i], _KIND.get(node['op'], node['op']), slot,
                           '' if path in ('h', 'h2h') else path)
            settings[name] = _spatial(node)
    deepest = max((role[0] for role in roles.values()), default=0)
    return roles, {name for name, role in roles.items() if role[0] == deepest}, settings


def _describe(settings):
    return ', '.join('%s %s' % item for item in sorted(settings.items()))


def pair_parameters(symbol_2d, shapes_2d, symbol_3d, shapes_3d, skip='nonlocal'):
    """``[(name_3d, name_2d or None)]``: each parameter of the 3-D graph ``symbol_3d`` with
    the parameter of the 2-D graph ``symbol_2d`` it takes its values from (None: a layer
    ``skip`` matches, which has no 2-D counterpart). ``shapes_*``: ``{name: shape}``.
    The classifier's parameters are paired even where their shapes differ (ImageNet's
    1000 classes, Kinetics' 400): the caller decides what to do with them. ValueError names
    the first parameter without a counterpart, or two that cannot be told apart."""
    roles_2d, classifier_2d, settings_2d = _roles(symbol_2d, None)
    roles_3d, classifier_3d, settings_3d = _roles(symbol_3d, skip)
    groups_2d, groups_3d = {}, {}
    for name, role in roles_2d.items():
        groups_2d.setdefault(role, []).append(name)
    for name, role in roles_3d.items():
        groups_3d.setdefault(role, []).append(name)
    if sorted(groups_2d) != sorted(groups_3d):
        missing = sorted(set(groups_3d) ^ set(groups_2d))[0]
        names = groups_3d.get(missing) or groups_2d.get(missing)
        raise ValueError('inflate: the 2-D and 3-D networks differ in their layers: %s (at '
                         'depth %d, operator %s) has no counterpart in the %s network'
                         % (names[0], missing[0], missing[1],
                            '2-D' if missing in groups_3d else '3-D'))
    pairs = []
    for role in sorted(groups_3d):
        left = list(groups_2d[role])
        for name in groups_3d[role]:
            fits = [other for other in left if inflated_shape(shapes_2d[other], shapes_3d[name])
                    or (name in classifier_3d and other in classifier_2d)]
            if len(fits) != 1:
                raise ValueError(
                    'inflate: %s %s %s' % (name, tuple(shapes_3d[name]), (
                        'has no 2-D parameter of a matching shape among %s' % ', '.join(
                            '%s %s' % (o, tuple(shapes_2d[o])) for o in left))
                        if not fits else 'could take any of %s: they cannot be told apart'
                        % ', '.join(fits)))
            left.remove(fits[0])
            if settings_2d[fits[0]] and settings_3d[name] and \
                    settings_2d[fits[0]] != settings_3d[name]:
                raise ValueError(
                    'inflate: %s and %s compute differently: %s in the 3-D network, %s in the '
                    '2-D one (spatial kernel, stride, padding, dilation, groups)'
                    % (name, fits[0], _describe(settings_3d[name]),
                       _describe(settings_2d[fits[0]])))
            pairs.append((name, fits[0]))
    pairs += [(name, None) for name in shapes_3d if name not in roles_3d]
    return pairs
