"""The run configuration: one typed, immutable object built once from (recipe, typed flags).

Each value comes from one place, recorded in ``RunConfig.sources``:
``default`` < ``demo data`` < the recipe (``paper``, ``reference code``,
``assumption``) < ``user``. A value the user typed always wins, even when it
equals the default; nothing else is ever replaced.
"""
import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ..utils.demo_data import IMAGE_SIZE as DEMO_INPUT_SIZE
from .models import default_model
from .recipes import BASE_BATCH, get_recipe, paper_training, scaled_lr

__all__ = ['RunConfig', 'Origin', 'USER', 'DEFAULT', 'DEMO', 'DEMO_INPUT_SIZE', 'typed_flags',
           'resolve', 'resumed', 'validate', 'check_range', 'check_data_path', 'flag_of',
           'MIN_INPUT_SIZE', 'PLACE_OPTIONS']

USER, DEFAULT, DEMO = 'user', 'default', 'demo data'
MIN_INPUT_SIZE = 32           # five stride-2 stages: smaller inputs vanish before the head


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
    warmup_epochs: int = 0
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
    skip_bad_records: bool = False
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
    config = RunConfig(sources=sources, **values)
    validate(config)
    return config


# Where a run is kept and how its files are read, not what its epochs compute: the options
# a resumed run may change (run.json records each segment's values).
PLACE_OPTIONS = ('save_dir', 'resume', 'resume_from', 'logging_file', 'quiet', 'workers',
                 'validate', 'rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx', 'data_dir',
                 'skip_bad_records')
_FLAGS = {'classes': '--num-classes', 'workers': '--num-data-workers', 'model': '--model'}


def flag_of(option):
    """The command-line flag of an option name: ``lr_mode`` -> ``--lr-mode``."""
    return _FLAGS.get(option, '--' + option.replace('_', '-'))


def resumed(config, saved):
    """The :class:`RunConfig` that continues the run recorded in ``saved`` (the ``config``
    record of a checkpoint's meta.json, as :meth:`RunConfig.describe` wrote it).

    A resumed run computes what the saved run would have: every value not typed
    comes from ``saved``, with its source. A typed value that differs from the saved
    one raises ValueError naming each such flag with both values, unless the option
    is one of :data:`PLACE_OPTIONS` (where files are, logging, decoding threads).
    """
    values, sources = config.values(), dict(config.sources)
    saved_sources = saved.get('sources', {})
    conflicts = []
    for name in FIELDS:
        if name not in saved:
            continue
        typed = sources.get(name, Origin(DEFAULT)).source == USER
        if not typed:
            values[name] = saved[name]
            sources[name] = Origin(saved_sources.get(name, DEFAULT), 'as in the resumed run')
        elif values[name] != saved[name] and name not in PLACE_OPTIONS:
            conflicts.append('%s %s (the checkpoint\'s run has %s)'
                             % (flag_of(name), _shown(values[name]), _shown(saved[name])))
    if conflicts:
        raise ValueError('a resumed run goes on as it started; this command changes %s. Leave '
                         'these flags out to continue the run, or start a new run in another '
                         '--save-dir' % '; '.join(conflicts))
    result = RunConfig(sources=sources, **values)
    validate(result)
    return result


def _shown(value):
    return 'off' if value is False else 'on' if value is True else str(value)


def _square(size):
    """One side from ``--input-size H [W]``: training crops are square."""
    sizes = list(size) if isinstance(size, (list, tuple)) else [size]
    if len(sizes) > 2 or len(set(sizes)) != 1:
        raise ValueError('--input-size: octconv-train trains square crops; give one size, '
                         'got %s' % ' '.join(str(s) for s in sizes))
    return sizes[0]



def check_range(flag, value, low=None, high=None, low_open=False, high_open=False):
    """ValueError naming ``flag`` unless ``low <= value <= high`` (``<`` where open)."""
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        interval = '%s%s, %s%s' % ('(' if low_open else '[', '-inf' if low is None else low,
                                   'inf' if high is None else high, ')' if high_open else ']')
        raise ValueError('%s must be in %s, got %s' % (flag, interval, value))


def check_data_path(flag, path):
    """ValueError naming ``flag`` for a path MXNet's reader cannot take: one holding ';' (its
    list separator), or one that exists but is not a regular file."""
    if path is None:
        return
    if ';' in path:
        raise ValueError("%s %s: MXNet reads ';' as a separator of several files; rename the "
                         'file or its folder' % (flag, path))
    if os.path.exists(path) and not os.path.isfile(path):
        raise ValueError('%s %s: not a regular file (a directory, FIFO or device)' % (flag, path))


def validate(config):
    """Check every option of ``config`` before any work starts; ValueError names the flag."""
    check_range('--batch-size', config.batch_size, 1)
    check_range('--input-size', config.input_size, MIN_INPUT_SIZE)
    check_range('--num-data-workers (-j)', config.workers, 1)
    check_range('--min-random-area', config.min_random_area, 0, 1, low_open=True)
    check_range('--crop-ratio', config.crop_ratio, 0, 1, low_open=True)
    check_range('--final-drop', config.final_drop, 0, 1, high_open=True)
    check_range('--num-epochs', config.num_epochs, 1)
    check_range('--warmup-epochs', config.warmup_epochs, 0, config.num_epochs, high_open=True)
    check_range('--save-frequency', config.save_frequency, 1)
    check_range('--keep-last', config.keep_last, 1)
    check_range('--lr', config.lr, 0, low_open=True)
    check_range('--warmup-lr', config.warmup_lr, 0)
    check_range('--lr-decay', config.lr_decay, 0, low_open=True)
    check_range('--momentum', config.momentum, 0, 1, high_open=True)
    check_range('--wd', config.wd, 0)
    check_range('--label-smoothing', config.label_smoothing, 0, 1, high_open=True)
    check_range('--mixup-alpha', config.mixup_alpha, 0, low_open=True)
    check_range('--mixup-off-epoch', config.mixup_off_epoch, 0, config.num_epochs)
    check_range('--seed', config.seed, 0)
    if config.classes is not None:
        check_range('--num-classes', config.classes, 1)
    try:
        decay_epochs = [int(e) for e in config.lr_decay_epoch.split(',') if e.strip()]
    except ValueError:
        raise ValueError("--lr-decay-epoch takes epochs separated by commas, e.g. '30,60', got "
                         '%r' % config.lr_decay_epoch) from None
    for epoch in decay_epochs:
        check_range('--lr-decay-epoch', epoch, config.warmup_epochs, config.num_epochs,
                    low_open=True, high_open=True)
    for flag, path in (('--rec-train', config.rec_train), ('--rec-train-idx',
                                                           config.rec_train_idx),
                       ('--rec-val', config.rec_val), ('--rec-val-idx', config.rec_val_idx)):
        check_data_path(flag, path)
    if config.skip_bad_records and config.data_dir:
        raise ValueError('--skip-bad-records leaves the bad records of a .rec out of training; '
                         'it does nothing for the image folders of --data-dir (pack them with '
                         'octconv-im2rec, which names each image it cannot read)')
    if os.path.exists(config.save_dir) and not os.path.isdir(config.save_dir):
        raise ValueError('--save-dir %s: exists and is not a folder' % config.save_dir)
