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
