"""What a released model is: one :class:`Released` record per published model.

The records themselves live beside their builders: ``octconv.symbol.released``
(the ablation networks of the paper's table A) and ``octconv.gluon.released`` (the
Gluon models of table B). The model registry, the paper tables, the training
recipes and ``octconv-score``'s defaults are all derived from them, so adding a
released model is one record. Each checkpoint file is downloaded from the address the
reference README links (:attr:`Released.url`); the ablation's baselines (ratio 0) were
published as figures only, with no file.
"""
from dataclasses import dataclass
from typing import Optional

__all__ = ['Released', 'REFERENCE_README', 'DOWNLOADS']

# Where the accuracies come from: the reference README's table of released checkpoints.
REFERENCE_README = 'reference README (table of released checkpoints)'
# Where the reference README links the released files, per API.
DOWNLOADS = {'symbol': 'https://dl.fbaipublicfiles.com/octconv/ablation/',
             'gluon': 'https://dl.fbaipublicfiles.com/octconv/others/'}


@dataclass(frozen=True)
class Released:
    """One published model, its released checkpoint, and the published facts about it.

    ``name`` is the released file's name without its extension (``.tar`` for a
    Symbol checkpoint, ``.params`` for a Gluon one; the same form for a model published
    as figures only, ``released`` False, which has no file); ``network`` the Symbol
    network or Gluon model it loads into, at ``depth`` (Symbol) and ``ratio`` (0:
    the vanilla baseline), with SE blocks if ``use_se``. ``top1`` / ``top5`` (%) are
    single 224 center-crop accuracies from ``accuracy_source``; ``earlier_top1`` is
    an earlier revision of that source where it gave another figure. ``params_m``
    and ``gflops`` are the published size where one was published. The training
    facts published with it: ``label_smoothing`` and ``mixup``. Its preprocessing:
    ``convention`` (normalisation), ``input_size`` and ``crop_ratio``.
    """
    name: str
    label: str
    table: str
    api: str
    network: str
    depth: Optional[int]
    ratio: float
    use_se: bool
    top1: float
    top5: float
    accuracy_source: str = REFERENCE_README
    earlier_top1: Optional[float] = None
    params_m: Optional[float] = None
    gflops: Optional[float] = None
    label_smoothing: bool = False
    mixup: bool = False
    convention: str = 'gluon'
    input_size: int = 224
    crop_ratio: float = 0.875
    released: bool = True

    @property
    def file(self):
        """The released file name (what it would be called, for a model with no file)."""
        return self.name + ('.tar' if self.api == 'symbol' else '.params')

    @property
    def url(self):
        """Where the reference README links the file, or None: published as figures only."""
        return DOWNLOADS[self.api] + self.file if self.released else None

    @property
    def model(self):
        """The Gluon model name (the same as ``network``)."""
        return self.network
