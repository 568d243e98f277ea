"""Regenerate the marked sections of README.md and docs/*.md.

A section runs from ``<!-- generated: NAME -->`` to ``<!-- end generated -->``. The
speed tables come from the kept bench runs (``results/*.jsonl``: the JSON lines of one
``octconv-bench`` run each, every line with its ``machine`` record), the model tables
from the released-model records and the FLOP counter, so no figure is typed by hand.

    python docs/generate.py           # rewrite the sections
    python docs/generate.py --check   # exit 1 naming each section that is out of date
"""
import argparse
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = re.compile(r'(<!-- generated: ([\w-]+) -->\n)(.*?)(<!-- end generated -->)', re.S)
# The variant each runtime deploys: what the summary reports.
DEPLOYED = {'mxnet': 'for_inference', 'onnxruntime': 'export_onnx', 'openvino': 'openvino'}


def load_runs(folder=os.path.join(ROOT, 'results')):
    """``[(file name, [row])]`` of every kept run, oldest file name first."""
    runs = []
    for path in sorted(glob.glob(os.path.join(folder, '*.jsonl'))):
        with open(path) as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        if rows:
            runs.append((os.path.basename(path), rows))
    return runs


def _dtype(rows):
    return rows[0].get('dtype', 'float32')


def _profiled(rows):
    return any(key.startswith('profile_') for key in rows[0])


def timed_runs(runs, dtype, threads=None):
    """The runs of ``dtype`` that time models (not the profiling runs, whose operators ran
    one at a time), with ``threads`` threads if given."""
    return [(name, rows) for name, rows in runs if _dtype(rows) == dtype and not _profiled(rows)
            and threads in (None, rows[0]['machine'].get('threads'))]


def _cpu(machine):
    return '%s (family %s model %s)' % (machine.get('model_name'), machine.get('family'),
                                        machine.get('model'))


def _batches(row):
    return sorted(int(key[1:-len('_time_ratio')]) for key in row
                  if re.fullmatch(r'b\d+_time_ratio', key))


def speed_summary(runs):
    """One row per CPU, runtime and batch: the deployed variant's time against vanilla."""
    ratios = sorted({row['ratio'] for _, rows in runs for row in rows if row['ratio']})
    lines = ['| CPU | runtime | batch | %s | run |' % ' | '.join('ratio %g' % r for r in ratios),
             '|---|---|---|%s---|' % ('---|' * len(ratios))]
    for name, rows in runs:
        deployed = [row for row in rows if row['variant'].endswith(DEPLOYED[row['runtime']])]
        for batch in _batches(rows[0]):
            cells = {row['ratio']: '%.2f' % row['b%d_time_ratio' % batch] for row in deployed}
            lines.append('| %s | %s | %d | %s | `%s` |' % (
                _cpu(rows[0]['machine']), rows[0]['runtime'], batch,
                ' | '.join(cells.get(r, '') for r in ratios), name))
    return '\n'.join(lines)


def _batch_rows(runs, ratios):
    """A table row per run and batch size: each ratio's time over vanilla's, vanilla's time
    and the run's file."""
    lines = []
    for name, rows in runs:
        for batch in _batches(rows[0]):
            cells = {row['ratio']: '%.2f' % row['b%d_time_ratio' % batch] for row in rows}
            vanilla = [row['b%d_ms' % batch] for row in rows if row['ratio'] == 0]
            lines.append('| %s | %s | %d | %s | %.1f ms | `%s` |' % (
                _cpu(rows[0]['machine']), rows[0]['runtime'], batch,
                ' | '.join(cells.get(r, '') for r in ratios), min(vanilla), name))
    return lines


def precision_summary(runs):
    """One row per CPU, runtime and batch: octave time over vanilla time of a run in a lower
    precision (bfloat16), with the vanilla time."""
    if not runs:
        return 'No kept run yet.'
    ratios = sorted({row['ratio'] for _, rows in runs for row in rows if row['ratio']})
    return '\n'.join(['| CPU | runtime | batch | %s | vanilla | run |' % ' | '.join(
        'ratio %g' % r for r in ratios), '|---|---|---|%s---|---|' % ('---|' * len(ratios))] +
        _batch_rows(runs, ratios))


def paper_setting(runs):
    """The paper's setting, one thread in float32 at batch 1: octave time over vanilla time
    per CPU and runtime, beside the paper's own (TVM, Intel Skylake)."""
    from octconv.utils.paper import CPU_MS, cpu_time_ratio
    ratios = sorted(r for r in CPU_MS if r)
    lines = ['| CPU | runtime | %s | vanilla | run |' % ' | '.join('ratio %g' % r for r in ratios),
             '|---|---|%s---|---|' % ('---|' * len(ratios)),
             '| paper: Intel Skylake 2.0 GHz | TVM | %s | %.0f ms | |' % (
                 ' | '.join('%.2f' % cpu_time_ratio(r) for r in ratios), CPU_MS[0.])]
    for name, rows in runs:
        deployed = [row for row in rows if row['variant'].endswith(DEPLOYED[row['runtime']])]
        cells = {row['ratio']: '%.2f' % row['b1_time_ratio'] for row in deployed}
        vanilla = [row['b1_ms'] for row in deployed if row['ratio'] == 0]
        lines.append('| %s | %s | %s | %.1f ms | `%s` |' % (
            _cpu(rows[0]['machine']), rows[0]['runtime'],
            ' | '.join(cells.get(r, '') for r in ratios), min(vanilla), name))
    return '\n'.join(lines)


def int8_summary(runs):
    """One row per CPU, runtime and batch: INT8 octave time over INT8 vanilla time, beside
    the target of each ratio."""
    from octconv.train.bench import INT8_TARGETS
    ratios = sorted(INT8_TARGETS)
    return '\n'.join(['| CPU | runtime | batch | %s | vanilla INT8 | run |' % ' | '.join(
        'ratio %g' % r for r in ratios), '|---|---|---|%s---|---|' % ('---|' * len(ratios)),
        '| target | | | %s | | |' % ' | '.join('%.2f' % INT8_TARGETS[r] for r in ratios)] +
        _batch_rows(runs, ratios))


def profiles(runs):
    """Each profiling run: the time of each operator type per run, one column per ratio."""
    parts = []
    for name, rows in runs:
        key = next(k for k in rows[0] if k.startswith('profile_'))
        ops = {op for row in rows for op, ms in row[key].items() if ms >= 0.1}
        ops = sorted(ops, key=lambda op: -max(row[key].get(op, 0.) for row in rows))
        head = ['operator'] + ['ratio %g' % row['ratio'] for row in rows]
        lines = ['%s, %s, %s, batch %s, ms per run (`results/%s`):' % (
            _cpu(rows[0]['machine']), rows[0]['runtime'], _dtype(rows), key.split('_')[1][1:],
            name), '',
            '| %s |' % ' | '.join(head), '|%s' % ('---|' * len(head))]
        for op in ops + ['total']:
            cells = ['%.1f' % (sum(row[key].values()) if op == 'total' else row[key].get(op, 0.))
                     for row in rows]
            lines.append('| %s | %s |' % ('**total**' if op == 'total' else '`%s`' % op,
                                          ' | '.join(cells)))
        parts.append('\n'.join(lines))
    return '\n\n'.join(parts)


def speed_results(runs):
    """Every kept timing run: its machine line, then each variant's figures."""
    from octconv.train.machine import machine_line
    parts = []
    for name, rows in runs:
        batches = _batches(rows[0])
        trained = any('train_time_ratio' in row for row in rows)
        head = ['variant', 'FLOPs'] + ['batch %d' % b for b in batches] + (
            ['training step'] if trained else [])
        lines = ['### %s, %s, %s (`results/%s`)' % (_cpu(rows[0]['machine']), rows[0]['runtime'],
                                                     _dtype(rows), name), '',
                 'Machine: %s. Model: %s `%s`.' % (machine_line(rows[0]['machine']),
                                                   rows[0]['api'], rows[0]['model']), '',
                 '| %s |' % ' | '.join(head), '|%s' % ('---|' * len(head))]
        for row in rows:
            cells = [row['variant'], '%.3f' % row['flop_ratio']]
            cells += ['%.3f (%.1f ms)' % (row['b%d_time_ratio' % b], row['b%d_ms' % b])
                      for b in batches]
            if trained:
                cells.append('%.3f' % row['train_time_ratio'] if 'train_time_ratio' in row
                             else '')
            lines.append('| %s |' % ' | '.join(cells))
        chosen = ['%s: %s' % (row['variant'], ', '.join('%s %s' % item for item in
                                                        sorted(row['inference_graph'].items())))
                  for row in rows if row.get('inference_graph')]
        if chosen:
            lines += ['', 'Graphs `for_inference` chose: %s.' % '; '.join(chosen)]
        parts.append('\n'.join(lines))
    return '\n\n'.join(parts)


def released_models():
    """The published models' records as a table: each file where the reference README
    links it."""
    from octconv.gluon.released import MODELS
    from octconv.symbol.released import ABLATION
    lines = ['| released file | network | ratio | published params | GFLOPs | top-1 / top-5 |',
             '|---|---|---|---|---|---|']
    for r in ABLATION + MODELS:
        network = '%s-%d' % (r.network, r.depth) if r.depth else r.network
        lines.append('| %s | %s%s | %g | %s | %s | %.1f / %.1f%s |' % (
            '[`%s`](%s)' % (r.file, r.url) if r.released else 'baseline: figures only',
            network, ' + SE' if r.use_se else '', r.ratio,
            '%.1fM' % r.params_m if r.params_m else '', '%g' % r.gflops if r.gflops else '',
            r.top1, r.top5, ' (earlier: %.1f)' % r.earlier_top1 if r.earlier_top1 else ''))
    source = {r.accuracy_source for r in ABLATION + MODELS}
    return '\n'.join(lines) + '\n\nAccuracies: %s.' % ', '.join(sorted(source))


def flops_released():
    """The counted parameters and FLOPs of every released model with a published figure."""
    from octconv.train.flops_report import paper_rows
    lines = ['| table | model | ratio | params | published | FLOPs | published | FLOPs diff |',
             '|---|---|---|---|---|---|---|---|']
    for row in paper_rows():
        if row['paper_flops'] is None:
            continue
        lines.append('| %s | %s | %g | %.2fM | %s | %.2fG | %.2fG | %+.2f%% |' % (
            row['table'], row['label'], row['ratio'], row['params'] / 1e6,
            '%.1fM' % (row['paper_params'] / 1e6) if row['paper_params'] else '',
            row['flops'] / 1e9, row['paper_flops'] / 1e9, 100 * row['flops_diff']))
    return '\n'.join(lines)


def accuracy_record(folder=os.path.join(ROOT, 'results', 'scores')):
    """Every kept score (``results/scores/*.jsonl``, the JSON lines of ``octconv-score``):
    what was scored, in which precision, on which data, and its top-1 and top-5."""
    lines = ['| scores | model | ratio | dtype | calibration | top-1 | top-5 | images | data '
             '| CPU |', '|---|---|---|---|---|---|---|---|---|---|']
    for name, rows in load_runs(folder):
        for row in rows:
            calibration = '%s, %d batches' % (row['calib_mode'], row['calib_batches']) \
                if row.get('calib_mode') else ''
            lines.append('| `%s` | %s-%s | %g | %s | %s | %.4f | %.4f | %d | %s | %s |' % (
                name, row['network'], row['depth'], row['ratio'], row['dtype'], calibration,
                row['top1'], row['top5'], row['images'], row['data'], _cpu(row['machine'])))
    return '\n'.join(lines)


def study_rows(study):
    """Every line of the kept runs of the study ``study`` (``results/<study>/``, written by
    ``studies/``), with its ``file``."""
    folder = os.path.join(ROOT, 'results', study)
    return [dict(row, file=name) for name, rows in load_runs(folder) for row in rows]


def onednn_floor(rows):
    """The kept runs of ``studies/onednn_floor/run.py`` (:func:`study_rows`): octave ResNet-50's convolution layers
    run as oneDNN 3 primitives, fused into the fewest calls: the fastest run over vanilla's
    fastest, per ISA oneDNN was limited to, batch, with or without the poolings and
    upsamplings, and with the layers split or each in its fastest arrangement (then with the
    multiply-adds run over vanilla's in brackets); beside the INT8 targets and the
    convolutions' FLOP ratios."""
    from octconv.train.bench import INT8_TARGETS
    ratios = sorted(INT8_TARGETS)
    rows = [row for row in rows if row['study'] == 'onednn-floor']
    if not rows:
        return 'No kept run yet.'
    flops = {row['ratio']: row['conv_flop_ratio'] for row in rows}
    lines = ['| CPU | oneDNN limited to | batch | layers | calls | %s | vanilla | run |' %
             ' | '.join('ratio %g' % r for r in ratios),
             '|---|---|---|---|---|%s---|---|' % ('---|' * len(ratios)),
             '| target | | | | | %s | | |' % ' | '.join('%.2f' % INT8_TARGETS[r] for r in ratios),
             '| convolution FLOPs | | | | | %s | | |' % ' | '.join(
                 '%.2f' % flops[r] for r in ratios)]
    groups, vanillas = {}, {}
    for row in rows:
        key = (row['file'], row['isa_limit'], row['batch'], row['convolutions_only'])
        if row['ratio'] == 0:
            vanillas[key] = row
        else:
            groups.setdefault(key + (tuple(row['allowed']),), []).append(row)
    for (name, isa, batch, only, allowed), group in groups.items():
        vanilla = vanillas[(name, isa, batch, only)]
        split = allowed == ('split',)
        cells = {row['ratio']: '%.2f' % row['min_time_ratio'] + (
            '' if split else ' (%.2f)' % row['run_mac_ratio']) for row in group}
        lines.append('| %s | %s | %d | %s | %s | %s | %.1f ms | `%s` |' % (
            _cpu(vanilla['machine']), isa, batch,
            'split' if split else 'fastest of ' + ', '.join(allowed),
            '%d / %d%s' % (vanilla['calls'], group[0]['calls'],
                           ', convolutions only' if only else ''),
            ' | '.join(cells.get(r, '') for r in ratios), vanilla['min_ms'], name))
    return '\n'.join(lines)


def onednn_floor_layers(rows):
    """The same study (:func:`study_rows`) layer by layer (batch 1, convolutions only, the kept ratio): each layer
    shape's octave convolutions' time over vanilla's same layers, per ISA, split and in the
    fastest arrangements, named; beside the FLOP ratio; layers of the same shape together."""
    rows = [row for row in rows if row['study'] == 'onednn-floor-layers']
    if not rows:
        return 'No kept run yet.'
    isas = list(dict.fromkeys(row['isa_limit'] for row in rows))
    shapes = {}
    for row in rows:
        f = row['fields']
        key = (f['k'], f['chi'], f['cli'], f['coh'], f['col'], f['hh'], f['ph'])
        shape = shapes.setdefault(key, dict(names=[], flops=row['conv_flop_ratio'], isa={}))
        if row['layer'] not in shape['names']:
            shape['names'].append(row['layer'])
        times = shape['isa'].setdefault((row['isa_limit'], tuple(row['allowed'])),
                                        [0., 0., set()])
        times[0] += row['ms']
        times[1] += row['vanilla_ms']
        times[2].add(row['arrangement'])

    def cell(shape, isa):
        split = shape['isa'][(isa, ('split',))]
        fastest = [times for (name, allowed), times in shape['isa'].items()
                   if name == isa and allowed != ('split',)]
        return '%.2f' % (split[0] / split[1]) + ''.join(
            ' / %.2f %s' % (times[0] / times[1], '+'.join(sorted(times[2])))
            for times in fastest)
    lines = ['At ratio %g, %s, batch 1, 2 threads: a layer\'s octave convolutions over the '
             'same layer\'s in vanilla (layers of one shape summed), split / in their fastest '
             'arrangements, named.' % (rows[0]['ratio'], _cpu(rows[0]['machine'])), '',
             '| layers | kernel | channels in (high + low) | out (high + low) | high side | '
             'FLOP ratio | %s |' % ' | '.join(isas), '|---|---|---|---|---|---|%s' % (
                 '---|' * len(isas))]
    for (k, chi, cli, coh, col, hh, ph), shape in shapes.items():
        name = shape['names'][0] + (' and %d more' % (len(shape['names']) - 1)
                                    if len(shape['names']) > 1 else '')
        lines.append('| `%s` | %dx%d | %d + %d | %d + %d | %d | %.2f | %s |' % (
            name, k, k, chi, cli, coh, col, hh // ph, shape['flops'],
            ' | '.join(cell(shape, isa) for isa in isas)))
    return '\n'.join(lines)


def openvino_int8_graphs(rows):
    """The kept runs of ``studies/openvino_int8_graphs/run.py`` (:func:`study_rows`): INT8
    octave ResNet-50 in OpenVINO in each form of its graph, the median run over vanilla's
    median (as the benchmark tables; the fastest run's ratio in brackets), per batch."""
    if not rows:
        return 'No kept run yet.'
    ratios = sorted({row['ratio'] for row in rows if row['ratio']})
    lines = ['| CPU | batch | graph | passes | %s | vanilla | run |' % ' | '.join(
        'ratio %g' % r for r in ratios), '|---|---|---|---|%s---|---|' % ('---|' * len(ratios))]
    groups, vanillas = {}, {}
    for row in rows:
        if row['ratio'] == 0:
            vanillas[(row['file'], row['batch'])] = row
        else:
            groups.setdefault((row['file'], row['batch'], row['form']), []).append(row)
    for (name, batch, form), group in groups.items():
        vanilla = vanillas[(name, batch)]
        cells = {row['ratio']: '%.2f (%.2f)' % (row['time_ratio'], row['min_time_ratio'])
                 for row in group}
        lines.append('| %s | %d | `%s` | %s | %s | %.1f ms | `%s` |' % (
            _cpu(vanilla['machine']), batch, form, ', '.join(group[0]['passes']) or 'none',
            ' | '.join(cells.get(r, '') for r in ratios), vanilla['ms'], name))
    return '\n'.join(lines)


def video_flops():
    """Table 8 beside the counted FLOPs of GluonCV's networks, with both placements."""
    from octconv.train.flops_report import video_rows
    lines = ['| model | ratio | placement | vanilla | published | octave | published | '
             'ratio | published | diff |', '|---|---|---|---|---|---|---|---|---|---|']
    for row in video_rows():
        lines.append('| %s | %g | `%s` | %.2fG | %.1fG | %.2fG | %.1fG | %.3f | %.3f | %+.3f |'
                     % (row['label'], row['ratio'], row['placement'],
                        row['vanilla_flops'] / 1e9, row['paper_vanilla_flops'] / 1e9,
                        row['flops'] / 1e9, row['paper_flops'] / 1e9, row['flop_ratio'],
                        row['paper_ratio'], row['ratio_diff']))
    return '\n'.join(lines)


def gluoncv_not_converted():
    """GluonCV's classifiers that do not convert, with what stops them."""
    from octconv.gluon.gluoncv_zoo import NOT_CONVERTED
    return '\n'.join('- `%s`: %s.' % item for item in sorted(NOT_CONVERTED.items()))


def sections():
    """``{section name: its text}`` as generated now."""
    runs, floor = load_runs(), study_rows('onednn-floor')
    timed = timed_runs(runs, 'float32') + timed_runs(runs, 'int8') + \
        timed_runs(runs, 'bfloat16')
    return {'speed-summary': speed_summary(timed_runs(runs, 'float32', threads=2)),
            'speed-results': speed_results(timed),
            'int8-summary': int8_summary(timed_runs(runs, 'int8')),
            'bfloat16-summary': precision_summary(timed_runs(runs, 'bfloat16')),
            'paper-setting': paper_setting(timed_runs(runs, 'float32', threads=1)),
            'profiles': profiles([(n, r) for n, r in runs if _profiled(r)]),
            'released-models': released_models(), 'flops-released': flops_released(),
            'gluoncv-not-converted': gluoncv_not_converted(), 'video-flops': video_flops(),
            'accuracy-record': accuracy_record(), 'onednn-floor': onednn_floor(floor),
            'onednn-floor-layers': onednn_floor_layers(floor),
            'openvino-int8-graphs': openvino_int8_graphs(study_rows('openvino-int8-graphs'))}


def documents():
    return [os.path.join(ROOT, 'README.md')] + sorted(glob.glob(os.path.join(ROOT, 'docs',
                                                                             '*.md')))


def update(check=False):
    """Rewrite (or with ``check`` compare) every marked section; returns the
    ``(file, section)`` pairs that were out of date."""
    generated, stale = sections(), []
    for path in documents():
        with open(path) as handle:
            text = handle.read()

        def fill(match):
            if match.group(2) not in generated:
                raise KeyError('%s: no generator for section %r' % (path, match.group(2)))
            body = generated[match.group(2)] + '\n'
            if match.group(3) != body:
                stale.append((os.path.relpath(path, ROOT), match.group(2)))
            return match.group(1) + body + match.group(4)
        new = SECTION.sub(fill, text)
        if new != text and not check:
            with open(path + '.tmp', 'w') as handle:
                handle.write(new)
            os.replace(path + '.tmp', path)
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args(argv)
    stale = update(check=args.check)
    for path, name in stale:
        print('%s: section %s %s' % (path, name, 'is out of date' if args.check
                                     else 'regenerated'))
    return 1 if args.check and stale else 0


if __name__ == '__main__':
    sys.exit(main())
