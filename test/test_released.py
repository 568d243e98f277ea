"""The released-model records against the reference figures shipped in test/data (a copy of
the project's reference sheet: the paper's and the reference README's tables)."""
import re

import pytest

from conftest import DATA
from octconv.gluon import get_model_list, released_models
from octconv.gluon.released import MODELS
from octconv.symbol import list_networks
from octconv.symbol.released import ABLATION
from octconv.train import recipes

SHEET = (DATA / 'reference_figures.md').read_text()
RATIOS = (0, .125, .25, .5, .75)
PAIR = re.compile(r'(\d+\.\d) / (\d+\.\d)')


def _table(heading):
    block = SHEET.split(heading, 1)[1].split('\n\n', 1)[0]
    return [[cell.strip() for cell in line.strip('|').split('|')]
            for line in block.splitlines() if line.startswith('|') and '---' not in line][1:]


def test_the_ablation_records_are_table_a_cell_by_cell():
    want = {}
    for row in _table('## A. Ablation'):
        for ratio, cell in zip(RATIOS, row[1:]):
            match = PAIR.fullmatch(cell)
            if match:
                want[row[0], ratio] = (float(match.group(1)), float(match.group(2)))
    assert {(r.label, r.ratio): (r.top1, r.top5) for r in ABLATION} == want
    assert all(r.network in list_networks() and r.depth in list_networks()[r.network]
               for r in ABLATION)


def test_the_gluon_records_are_table_b_row_by_row():
    rows = _table('## B. Others')
    assert len(rows) == len(MODELS)
    for record, row in zip(MODELS, rows):
        assert row[0].startswith(record.label) and float(row[1]) == record.ratio
        assert (row[2] == 'Yes', row[3] == 'Yes') == (record.label_smoothing, record.mixup)
        assert float(row[4].split()[0]) == record.params_m
        size, unit = row[5].split()
        assert float(size) * {'M': 1e-3, 'G': 1.}[unit] == pytest.approx(record.gflops)
        assert PAIR.fullmatch(row[6]).groups() == ('%.1f' % record.top1, '%.1f' % record.top5)
        assert record.network in get_model_list()


def test_the_registry_and_the_recipes_come_from_the_records():
    assert released_models() == {r.name: (r.network, r.ratio, r.use_se) for r in MODELS}
    assert list(recipes.RECIPES) == [r.name for r in ABLATION + MODELS]
    for record in ABLATION + MODELS:
        card = recipes.get_recipe(record.name)
        assert card.record is record
        assert card.settings['convention'].value == record.convention
        assert card.settings['label_smoothing'].value == (0.1 if record.label_smoothing else 0)
        assert card.settings['mixup'].value == record.mixup
