"""The embedded demo data: scikit-learn's handwritten digits as an ImageNet-style set.

scikit-learn ships 1,797 labelled 8x8 scans of the digits 0-9 inside its wheel
(``sklearn/datasets/data/digits.csv.gz``), so nothing is downloaded. They are
written as a folder-per-class tree of 32x32 JPEGs and packed with
:func:`octconv.utils.im2rec.pack` into ``digits_train.rec`` / ``digits_val.rec``
(80/20 per class) under the cache folder (``$OCTCONV_CACHE`` or
``~/.cache/octconv``).
"""
import gzip
import os
from importlib import resources

import numpy as np

__all__ = ['NUM_CLASSES', 'IMAGE_SIZE', 'cache_dir', 'load_digits', 'write_image_folder',
           'demo_records']

NUM_CLASSES = 10
IMAGE_SIZE = 32


def cache_dir():
    """``$OCTCONV_CACHE`` or ``~/.cache/octconv``."""
    return os.path.expanduser(os.environ.get('OCTCONV_CACHE', os.path.join('~', '.cache',
                                                                            'octconv')))


def load_digits():
    """``(images uint8 (1797, 8, 8), labels int (1797,))`` from the scikit-learn wheel."""
    source = resources.files('sklearn.datasets') / 'data' / 'digits.csv.gz'
    with source.open('rb') as raw, gzip.open(raw, 'rt') as text:
        table = np.loadtxt(text, delimiter=',')
    images = np.round(table[:, :64] * (255 / 16)).astype(np.uint8).reshape(-1, 8, 8)
    return images, table[:, 64].astype(int)


def write_image_folder(root, size=IMAGE_SIZE, per_class=None):
    """Write ``root/<digit>/<index>.jpg`` (white digit on black, ``size`` px); returns root.

    ``per_class`` keeps only the first that many images of each digit.
    """
    import cv2
    images, labels = load_digits()
    for digit in range(NUM_CLASSES):
        os.makedirs(os.path.join(root, str(digit)), exist_ok=True)
    if per_class is not None:
        keep = np.concatenate([np.flatnonzero(labels == d)[:per_class]
                               for d in range(NUM_CLASSES)])
        images, labels = images[np.sort(keep)], labels[np.sort(keep)]
    for index, (image, label) in enumerate(zip(images, labels)):
        big = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(os.path.join(root, str(label), '%04d.jpg' % index),
                    cv2.cvtColor(big, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return root


def demo_records(root=None, threads=2):
    """``{'train': rec, 'val': rec, 'folder': image folder}``, built once and then reused."""
    from .im2rec import pack
    root = root or os.path.join(cache_dir(), 'digits')
    prefix = os.path.join(root, 'digits')
    paths = {'train': prefix + '_train.rec', 'val': prefix + '_val.rec',
             'folder': os.path.join(root, 'images')}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    write_image_folder(paths['folder'])
    pack(paths['folder'], prefix, val_ratio=0.2, quality=95, threads=threads, seed=0)
    return paths
