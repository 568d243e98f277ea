"""An independent numpy implementation of paper Eq. 4, for the tests.

Written from the paper, not from the package: loops over groups and kernel
offsets, explicit pooling windows and nearest-neighbour repetition.
"""
import numpy as np


def conv2d(x, w, b=None, pad=0, groups=1):
    """Stride-1 grouped convolution. x (N, C, H, W), w (O, C/groups, kh, kw) -> (N, O, H', W')."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    assert c == cg * groups and o % groups == 0
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    out = np.zeros((n, o, ho, wo), dtype=np.float64)
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i:i + ho, j:j + wo]            # (N, cg, ho, wo)
                out[:, g * og:(g + 1) * og] += np.einsum('nchw,oc->nohw', patch, ws[:, :, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def avgpool2(x):
    """2x2 stride-2 average; a window cut by the border averages the pixels it covers."""
    n, c, h, w = x.shape
    ho, wo = -(-h // 2), -(-w // 2)
    out = np.zeros((n, c, ho, wo), dtype=np.float64)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(axis=(2, 3))
    return out


def upsample2(x, size):
    """Nearest 2x upsampling cropped to ``size`` = (H, W)."""
    up = x.repeat(2, axis=2).repeat(2, axis=3)
    return up[:, :, :size[0], :size[1]]


def octave_conv(x_h, x_l, weights, biases=None, pad=0, stride=1, groups=None):
    """Eq. 4. ``weights``/``biases``/``groups``: dicts keyed by path ('h2h', ...)."""
    biases = biases or {}
    groups = groups or {}
    if stride == 2:
        x_h_in = None if x_h is None else avgpool2(x_h)
        x_l_down = None if x_l is None else avgpool2(x_l)
    else:
        x_h_in, x_l_down = x_h, x_l
    terms_h, terms_l = [], []

    def conv(path, x):
        return conv2d(x, weights[path], biases.get(path), pad=pad, groups=groups.get(path, 1))

    if 'h2h' in weights:
        terms_h.append(conv('h2h', x_h_in))
    if 'h2l' in weights:
        terms_l.append(conv('h2l', avgpool2(x_h_in)))
    if 'l2l' in weights:
        terms_l.append(conv('l2l', x_l_down))
    if 'l2h' in weights:
        y = conv('l2h', x_l)
        if stride == 1:
            size = terms_h[0].shape[2:] if terms_h else x_h.shape[2:]
            y = upsample2(y, size)
        terms_h.append(y)
    y_h = sum(terms_h) if terms_h else None
    y_l = sum(terms_l) if terms_l else None
    return y_h, y_l


def octave_conv_general(x_h, x_l, weights, stride, pad, geometry):
    """The general form of Eq. 4, for a layer that does not keep (or halve) the map's size:
    h2h is the plain convolution (``pad``, ``stride``); every other path is a stride-1
    convolution padded by ``geometry[path][0]`` on its grid (the low input; the high input
    pooled 2x2, once more with stride 2), l2h upsampled at stride 1, then cropped from
    ``geometry[path][1]`` to the size of its output part (the high part's size, or half of
    it rounded up). ``geometry`` is the test's own table, not the package's."""
    y_hh = conv2d(x_h, weights['h2h'], pad=pad)[:, :, ::stride, ::stride]
    high = y_hh.shape[2:]
    low = tuple(-(-s // 2) for s in high)

    def crop(y, begin, size):
        return y[:, :, begin:begin + size[0], begin:begin + size[1]]

    q, begin = geometry['l2h']
    y_lh = conv2d(x_l, weights['l2h'], pad=q)
    if stride == 1:
        y_lh = y_lh.repeat(2, axis=2).repeat(2, axis=3)
    source_h = avgpool2(x_h) if stride == 1 else avgpool2(avgpool2(x_h))
    source_l = x_l if stride == 1 else avgpool2(x_l)
    q_hl, begin_hl = geometry['h2l']
    q_ll, begin_ll = geometry['l2l']
    y_h = y_hh + crop(y_lh, begin, high)
    y_l = crop(conv2d(source_h, weights['h2l'], pad=q_hl), begin_hl, low) + \
        crop(conv2d(source_l, weights['l2l'], pad=q_ll), begin_ll, low)
    return y_h, y_l


def convnd(x, w, pad, stride):
    """Convolution of any number of spatial axes, one group. x (N, C, *S), w (O, C, *K),
    ``pad`` and ``stride`` one value per axis -> (N, O, *S')."""
    import itertools
    dims = x.ndim - 2
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in pad))
    out_size = [(xp.shape[2 + a] - w.shape[2 + a]) // stride[a] + 1 for a in range(dims)]
    out = np.zeros((x.shape[0], w.shape[0]) + tuple(out_size))
    for offset in itertools.product(*(range(k) for k in w.shape[2:])):
        window = tuple(slice(o, o + stride[a] * (n - 1) + 1, stride[a])
                       for a, (o, n) in enumerate(zip(offset, out_size)))
        patch = xp[(slice(None), slice(None)) + window]
        out += np.einsum('nc...,oc->no...', patch, w[(slice(None), slice(None)) + offset])
    return out


def avgpool2_axes(x, axes):
    """2-wide stride-2 average along each of ``axes`` (of x's spatial axes, counted from
    0), a window cut by the border averaging what it covers."""
    for axis in axes:
        a = 2 + axis
        n = x.shape[a]
        pieces = [x.take(range(2 * i, min(2 * i + 2, n)), axis=a).mean(axis=a, keepdims=True)
                  for i in range(-(-n // 2))]
        x = np.concatenate(pieces, axis=a)
    return x


def octave_conv_nd(x_h, x_l, weights, pad, stride, axes):
    """Eq. 4 for maps of any number of spatial axes, the low part halved along ``axes``
    only (a video's height and width): the same equations as :func:`octave_conv`, with
    ``stride`` the stride of ``axes`` (1 or 2) and the other axes strided as given in
    ``stride`` too (a tuple per axis)."""
    dims = x_h.ndim - 2
    spatial = stride[axes[0]]
    plain = tuple(1 if a in axes else stride[a] for a in range(dims))
    pooled_h = avgpool2_axes(x_h, axes) if spatial == 2 else x_h
    pooled_l = avgpool2_axes(x_l, axes) if spatial == 2 else x_l
    y_h = convnd(pooled_h, weights['h2h'], pad, plain)
    lh = convnd(x_l, weights['l2h'], pad, plain)
    if spatial == 1:
        for axis in axes:
            lh = lh.repeat(2, axis=2 + axis)
        lh = lh[(slice(None), slice(None)) + tuple(slice(0, n) for n in y_h.shape[2:])]
    y_h = y_h + lh
    y_l = convnd(avgpool2_axes(pooled_h, axes), weights['h2l'], pad, plain) + \
        convnd(pooled_l, weights['l2l'], pad, plain)
    return y_h, y_l
