"""Where each original channel sits in an octave pair that ``octavize`` builds.

A pair made by splitting one map keeps the map's order: its high part holds channels
``[0, C_h)`` and its low part ``[C_h, C)``. A channel concatenation of pairs does not:
``concat((A_h, A_l), (B_h, B_l))`` is ``([A_h, B_h], [A_l, B_l])``, so the original
channels of its high part are A's high ones followed by B's. An *order* records this: the
tuple of the original channel at each position of ``high`` followed by ``low`` (``None``
when it is ``0, 1, ..., C - 1``). The functions here build maps of a given order from
maps of another by slicing runs of consecutive channels and joining them.
"""
import numpy as np

from .octave import concat_channels

__all__ = ['concat_orders', 'part_index', 'runs', 'gather', 'joined']


def concat_orders(pieces):
    """The order of the channel concatenation of ``pieces``, a list of ``(channels,
    order)`` (``channels`` a ``(C_h, C_l)`` pair): its high positions first, then its low
    ones; ``None`` when that is the identity."""
    highs, lows, base = [], [], 0
    for (high, low), order in pieces:
        whole = np.arange(base, base + high + low) if order is None else base + np.array(order)
        highs.append(whole[:high])
        lows.append(whole[high:])
        base += high + low
    order = np.concatenate(highs + lows).astype(int)
    return None if (order == np.arange(len(order))).all() else tuple(int(c) for c in order)


def part_index(channels, order, part):
    """The original channels of ``part`` (0: high, 1: low) of a pair of ``channels`` and
    ``order``: a slice when they are consecutive, else an integer array."""
    start = 0 if part == 0 else channels[0]
    stop = channels[0] if part == 0 else channels[0] + channels[1]
    if order is None:
        return slice(start, stop)
    index = np.array(order[start:stop], dtype=int)
    if len(index) and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def runs(index):
    """``[(begin, end, position)]``: ``index`` (a list of channel numbers) cut into runs of
    consecutive channels ``[begin, end)``, each starting at ``position`` of ``index``."""
    out = []
    for position, channel in enumerate(index):
        if out and out[-1][1] == channel and out[-1][2] + (out[-1][1] - out[-1][0]) == position:
            out[-1] = (out[-1][0], channel + 1, out[-1][2])
        else:
            out.append((channel, channel + 1, position))
    return out


def gather(F, x, index, name):
    """The channels ``index`` (a list of channel numbers of ``x``, in that order) of the map
    ``x`` (N, C, ...)."""
    parts = [F.slice_axis(x, axis=1, begin=b, end=e, name='%s_take%d' % (name, k))
             for k, (b, e, _) in enumerate(runs(list(index)))]
    return parts[0] if len(parts) == 1 else concat_channels(F, parts, name=name)


def joined(F, high, low, channels, order, name, spatial=True):
    """One map of the pair ``(high, low)`` (both of the same size: a merged or pooled pair)
    with its channels in their original order; ``spatial`` False for (N, C) maps."""
    def concat(parts, suffix):
        if len(parts) == 1:
            return parts[0]
        if spatial:
            return concat_channels(F, parts, name=name + suffix)
        return F.concat(*parts, dim=1, name=name + suffix)
    if order is None:
        return concat([high, low], '')
    located = []
    for part, x in ((0, high), (1, low)):
        start = 0 if part == 0 else channels[0]
        index = order[start:start + channels[part]]
        for k, (begin, end, position) in enumerate(runs(list(index))):
            piece = F.slice_axis(x, axis=1, begin=position, end=position + end - begin,
                                 name='%s_%s%d' % (name, 'hl'[part], k))
            located.append((begin, piece))
    return concat([piece for _, piece in sorted(located, key=lambda item: item[0])], '')
