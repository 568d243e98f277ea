"""Folders are layers: utils <- symbol, gluon <- train. Every import of every module, those
inside functions too, goes down (or within its own folder), never up or sideways."""
import ast
import pathlib
import time

import pytest

import octconv.symbol as S

ROOT = pathlib.Path(__file__).parent.parent
# What each folder may import besides itself.
ALLOWED = {'utils': set(), 'symbol': {'utils'}, 'gluon': {'utils'},
           'train': {'utils', 'symbol', 'gluon'}}


def _imported_folders(path, folder):
    """``[(line, folder imported)]`` of the package's folders that ``path`` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            parts = (node.module or '').split('.') if node.module else []
            if node.level == 1:
                targets = [folder]
            elif parts:
                targets = [parts[0]]
            else:                                   # from .. import symbol, gluon
                targets = [alias.name for alias in node.names]
            found += [(node.lineno, t) for t in targets]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) \
                else [node.module or '']
            found += [(node.lineno, name.split('.')[1]) for name in names
                      if name.startswith('octconv.') and name.count('.') >= 1]
    return sorted((line, target) for line, target in found if target in ALLOWED)


MODULES = sorted(p for folder in ALLOWED for p in (ROOT / folder).glob('*.py'))


@pytest.mark.parametrize('path', MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_imports_go_down_the_layers(path):
    folder = path.parent.name
    for line, target in _imported_folders(path, folder):
        assert target == folder or target in ALLOWED[folder], (
            '%s:%d imports %s, which %s may not import' % (path.relative_to(ROOT), line,
                                                             target, folder))


def test_the_checker_sees_lazy_and_absolute_imports(tmp_path):
    sample = tmp_path / 'sample.py'
    sample.write_text('def f():\n    from ..gluon import get_model\n'
                      'import octconv.train.fit\nfrom . import octave\n')
    assert _imported_folders(sample, 'utils') == [(2, 'gluon'), (3, 'train'), (4, 'utils')]


def _build_seconds(depth, repeats=3):
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        S.get_linear('resnetv2', depth, ratio=0.25)
        best = min(best, time.perf_counter() - start)
    return best


def test_build_time_is_linear_in_depth():
    """resnetv2-200 has 4x the units of resnetv2-50 (66 against 16): its graph must build in
    about that multiple of the time, not in the square of it (17x; 8x leaves room for a
    busy machine)."""
    ratio = _build_seconds(200, repeats=5) / _build_seconds(50, repeats=5)
    assert ratio < 8, ratio
