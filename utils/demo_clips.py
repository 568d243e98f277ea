"""The embedded demo clips: the demo digits (:mod:`octconv.utils.demo_data`) moving across
the frames of short videos, for trying video networks with nothing downloaded.

Each clip shows one digit, drawn at half the frame's side, sliding in a straight line
from one random point of the frame to another over its frames, on black; its label is the
digit. Clips are made in memory, the same ones for the same arguments.
"""
import numpy as np

from .demo_data import NUM_CLASSES, load_digits

__all__ = ['demo_clips']


def demo_clips(per_class=10, frames=8, size=32, seed=0):
    """``(clips, labels)``: ``clips`` float32 (N, 3, frames, size, size) in [0, 1] (the same
    grey in the three channels), ``labels`` int (N,), ``per_class`` clips of each digit
    (N = 10 * per_class), in label order. ValueError for a size below 8 or no frames."""
    import cv2
    if size < 8 or frames < 1 or per_class < 1:
        raise ValueError('demo_clips: size must be at least 8 and frames and per_class at '
                         'least 1, got size %d, frames %d, per_class %d'
                         % (size, frames, per_class))
    images, labels = load_digits()
    random = np.random.RandomState(seed)
    digit_side = size // 2
    clips, targets = [], []
    for digit in range(NUM_CLASSES):
        for index in np.flatnonzero(labels == digit)[:per_class]:
            sprite = cv2.resize(images[index], (digit_side, digit_side),
                                interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
            start, end = random.randint(0, size - digit_side + 1, size=(2, 2))
            clip = np.zeros((frames, size, size), np.float32)
            for t in range(frames):
                step = t / max(frames - 1, 1)
                top, left = np.round(start + (end - start) * step).astype(int)
                clip[t, top:top + digit_side, left:left + digit_side] = sprite
            clips.append(np.repeat(clip[None], 3, axis=0))
            targets.append(digit)
    return np.stack(clips), np.array(targets)
