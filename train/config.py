"""The run configuration: one typed, immutable object built once from (recipe, typed flags).

Each value comes from one place, recorded in ``RunConfig.sources``:
``default`` < ``demo data`` < the recipe (``paper``, ``reference code``,
``assumption``) < ``user``. A value the user typed always wins, even when it
equals the default; nothing else is ever replaced.
"""
import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ..utils.demo_data import IMAGE_SIZE as DEMO_INPUT_SIZE
from .recipes import BASE_BATCH, get_recipe, paper_training, scaled_lr

__all__ = ['RunConfig', 'Origin', 'USER', 'DEFAULT', 'DEMO', 'DEMO_INPUT_SIZE', 'typed_flags',
           'resolve', 'default_model']

USER, DEFAULT, DEMO = 'user', 'default', 'demo data'


@dataclass(frozen=True)
class Origin:
    """Where a value of the run comes from (``source``) and why (``note``)."""
    source: str
    note: str = ''


@dataclass(frozen=True)
class RunConfig:
    """Everything an ``octconv-train`` run does; the field names are its option names.

    The defaults are the reference's where it has one (224 px, MSRAPrelu); build
    one with :func:`resolve`, or directly in tests: ``RunConfig(input_size=32, ...)``.
    """
    # model
    api: str = 'symbol'
    model: Optional[str] = None           # None: resnetv2 (Symbol) or resnet50_v1b (Gluon)
    depth: int = 26
    ratio: float = 0.25
    use_se: bool = False
    classes: Optional[int] = None         # None: from the training data
    input_size: int = 224
    last_gamma: bool = False
    final_drop: float = 0.
    initializer: str = 'msraprelu'
    # optimisation
    optimizer: str = 'nag'
    lr: float = 0.1
    lr_mode: str = 'cosine'
    lr_decay: float = 0.1
    lr_decay_epoch: str = ''
    warmup_lr: float = 0.
    warmup_epochs: int = 1
    momentum: float = 0.9
    wd: float = 1e-4
    no_wd: bool = False
    label_smoothing: float = 0.
    mixup: bool = False
    mixup_alpha: float = 0.2
    mixup_off_epoch: int = 0
    batch_size: int = 64                  # per device
    num_epochs: int = 8
    seed: int = 0
    kv_store: str = 'device'
    # checkpoints and logs
    save_dir: str = 'octconv-run'
    save_frequency: int = 1
    keep_last: int = 3
    resume: bool = False
    resume_from: Optional[str] = None
    logging_file: Optional[str] = None
    quiet: bool = False
    # data (no rec_train and no data_dir: the embedded demo digits)
    rec_train: Optional[str] = None
    rec_train_idx: Optional[str] = None
    min_random_area: float = 0.08
    rec_val: Optional[str] = None
    rec_val_idx: Optional[str] = None
    data_dir: Optional[str] = None
    convention: Optional[str] = None      # None: 'symbol' for the Symbol API, else 'gluon'
    crop_ratio: float = 0.875
    workers: int = 2
    validate: bool = False
    # devices
    gpus: str = ''
    dtype: str = 'float32'
    # where the values come from
    recipe: Optional[str] = None
    preset: Optional[str] = None
    sources: Mapping[str, Origin] = field(default_factory=dict, compare=False, repr=False)

    data_dir_has_splits = True            # --data-dir holds train/ and val/

    @property
    def progress(self):
        """Whether to draw progress bars."""
        return not self.quiet

    @property
    def model_name(self):
        """The network or model name, with the API's default filled in."""
        return self.model or default_model(self.api)

    def values(self):
        """``{option name: value}`` of every setting (``sources`` left out)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != 'sources'}

    def describe(self):
        """One JSON-ready dict: every value, plus ``sources`` ({option: source})."""
        return dict(self.values(), sources={k: o.source for k, o in self.sources.items()})


def default_model(api):
    """The model trained when none is named: ``resnetv2`` (Symbol) or ``resnet50_v1b``."""
    return 'resnetv2' if api == 'symbol' else 'resnet50_v1b'


FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name != 'sources')


def typed_flags(parser, argv):
    """``{option: value}`` of only the options typed in ``argv`` (a typed value equal to
    its default included): the parser's defaults are suppressed for this parse."""
    actions = [action for action in parser._actions if action.dest != 'help']
    defaults = [action.default for action in actions]
    for action in actions:
        action.default = argparse.SUPPRESS
    try:
        parsed = vars(parser.parse_args(argv))
    finally:
        for action, default in zip(actions, defaults):
            action.default = default
    return {action.dest: parsed[action.dest] for action in actions if action.dest in parsed}


def resolve(typed, num_devices=1, num_workers=1):
    """The :class:`RunConfig` of ``typed`` ({option: value} the user gave).

    ``typed['recipe']`` (a recipe name) or ``typed['preset'] == 'paper'`` (the paper's
    training recipe for the typed model) supply every value not typed. Without a
    recipe, data flags leave the demo digits and their 32 px input. The recipe's lr
    0.4 is scaled to the total batch, ``batch_size x num_devices x num_workers``,
    unless ``lr`` is typed. Raises ValueError for an unknown recipe or option.
    """
    unknown = set(typed) - set(FIELDS)
    if unknown:
        raise ValueError('not an octconv-train option: %s' % ', '.join(sorted(unknown)))
    values = {name: getattr(RunConfig, name) for name in FIELDS}
    sources = {name: Origin(DEFAULT) for name in FIELDS}
    if not (typed.get('rec_train') or typed.get('data_dir')):
        values['input_size'] = DEMO_INPUT_SIZE
        sources['input_size'] = Origin(DEMO, 'the embedded digits are 32x32; give --rec-train '
                                             'or --data-dir for real data')
    settings = {}
    if typed.get('recipe'):
        settings = get_recipe(typed['recipe']).settings
    elif typed.get('preset') == 'paper':
        api = typed.get('api', values['api'])
        settings = paper_training(api, typed.get('model') or default_model(api))
    for name, setting in settings.items():
        values[name], sources[name] = setting.value, Origin(setting.source, setting.note)
    for name, value in typed.items():
        values[name], sources[name] = value, Origin(USER)
    if 'input_size' in typed:
        values['input_size'] = _square(typed['input_size'])
    if 'lr' in settings and 'lr' not in typed:
        total = values['batch_size'] * num_devices * num_workers
        values['lr'] = scaled_lr(total)
        sources['lr'] = Origin(settings['lr'].source, '0.4 x total batch %d / %d (%d per device '
                                                      'x %d devices x %d workers)'
                               % (total, BASE_BATCH, values['batch_size'], num_devices,
                                  num_workers))
    if values['convention'] is None:
        values['convention'] = 'symbol' if values['api'] == 'symbol' else 'gluon'
        sources['convention'] = Origin(DEFAULT, 'the convention of the API')
    return RunConfig(sources=sources, **values)


def _square(size):
    """One side from ``--input-size H [W]``: training crops are square."""
    sizes = list(size) if isinstance(size, (list, tuple)) else [size]
    if len(sizes) > 2 or len(set(sizes)) != 1:
        raise ValueError('--input-size: octconv-train trains square crops; give one size, '
                         'got %s' % ' '.join(str(s) for s in sizes))
    return sizes[0]

