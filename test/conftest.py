"""Shared test helpers: the checkpoint manifests shipped in test/data, graph inspection."""
import json
import pathlib

DATA = pathlib.Path(__file__).parent / 'data'


def manifests(api):
    """``[(file name, manifest dict)]`` for ``api`` ('symbol' or 'gluon')."""
    return [(path.name, json.loads(path.read_text()))
            for path in sorted(DATA.glob('%s_*.json' % api))]


def ops_of(symbol):
    """The operator names of ``symbol``'s nodes, in graph order ('null' for variables)."""
    return [node['op'] for node in json.loads(symbol.tojson())['nodes']]
