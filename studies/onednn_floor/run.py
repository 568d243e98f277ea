"""The floor of a fused INT8 octave layer: how fast octave ResNet-50's convolution layers can
run on oneDNN 3.x against vanilla's, in the fewest calls and with no other operator.

    .venv/bin/python studies/onednn_floor/run.py [--out FILE.jsonl]

(with octconv installed: make demo or make test build .venv). It writes each convolution
layer of octconv's ``resnet50_v1b`` at 224 px, at ratio 0 and at each octave ratio, as read
from the exported graph; installs oneDNN 3.2 from PyPI (``onednn-cpu-gomp``,
``onednn-devel-cpu-gomp``) into ``build/`` beside this file; compiles ``floor.cpp``; and times
the networks layer by layer side by side (``--rounds`` rounds), at batch 1 and 16 with 2
threads, with each instruction set that oneDNN can be limited to on this CPU
(``ONEDNN_MAX_CPU_ISA``: AVX2, AVX-512 with VNNI, AMX).
Each network runs as built and with its convolutions only (``convolutions_only``: no
pooling or upsampling), and each octave network twice in the same process: with its layers
split (``allowed`` ``['split']``: each octave layer's own convolutions) and with each layer
in the fastest of the arrangements of ``floor.cpp`` (``['split', 'stacked', 'wide']``: exact
rewrites into fewer, wider convolutions that run more multiply-adds). One JSON line per ISA,
batch, mode, arrangements and ratio (the median and the fastest time, their ratios to
vanilla's, the convolution FLOP ratio, the multiply-adds run over vanilla's, calls, how many
layers took each arrangement), and at batch 1 one per layer of ratio 0.25 (``study``
``onednn-floor-layers``: its convolutions' time against the same layer of vanilla's, its
FLOP ratio, its arrangement), each with the CPU record of ``octconv-bench``, into
``results/onednn-floor/``; ``docs/generate.py`` makes the tables of ``docs/design.md`` from
the kept files.
"""
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import venv

from octconv.train.studies import keep_run, run_study, study_parser
from octconv.utils.flops import attr_tuple
from octconv.utils.octave import PATHS

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, 'build')
RESULTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'results', 'onednn-floor')
ONEDNN = ['onednn-cpu-gomp==2023.2.0', 'onednn-devel-cpu-gomp==2023.2.0']
RATIOS = (0.0, 0.125, 0.25, 0.5, 0.75)
LAYER_RATIO = 0.25           # the ratio whose layers are kept one by one
PATH = re.compile(r'^(.*)-(%s)$' % '|'.join(PATHS))     # a layer's name, and which path
# A layer's fields after its name, in floor.cpp's order.
FIELDS = ('k', 'stride', 'pad', 'chi', 'cli', 'coh', 'col', 'hh', 'hl', 'ph', 'phl', 'pll')
# The arrangements an octave layer may take (floor.cpp): its own split, or the fastest.
ARRANGEMENTS = (('split',), ('split', 'stacked', 'wide'))
# oneDNN's ISA limits, each run where the CPU has the flags it needs.
ISAS = (('AVX2', ('avx2',)), ('AVX512_CORE_VNNI', ('avx512_vnni',)),
        ('AVX512_CORE_AMX', ('amx_int8',)))


def convolution_layers(ratio, size=224):
    """The convolution layers of octconv's Gluon ``resnet50_v1b`` at ``ratio``, from its exported
    graph at ``size``: ``[(name, k, stride, pad, chi, cli, coh, col, hh, hl, ph, phl, pll)]``,
    the fields of ``floor.cpp`` (high/low channels in and out, the high/low input sides, the
    pooling factors of the inputs that high-to-high, high-to-low and low-to-low read; 0 where
    a path is absent)."""
    from octconv.gluon import get_model
    from octconv.utils.octavize import original_shapes
    net = get_model('resnet50_v1b', ratio=ratio)
    net.initialize()
    symbol, _ = net.export_graph(data_shape=(1, 3, size, size))
    shapes = original_shapes(symbol, (1, 3, size, size))
    nodes = json.loads(symbol.tojson())['nodes']

    def source(node):
        """(shape of the map a convolution reads, its pooling factor), through average
        poolings (the octave layers'; a max pooling is the network's own)."""
        index, slot, _ = node['inputs'][0]
        shape = before = shapes[(index, slot)]
        while nodes[index]['op'] == 'Pooling' and \
                nodes[index]['attrs'].get('pool_type') == 'avg':
            index, slot, _ = nodes[index]['inputs'][0]
            before = shapes[(index, slot)]
        return before, before[2] // shape[2]

    layers = {}
    for index, node in enumerate(nodes):
        if node['op'] != 'Convolution':
            continue
        match = PATH.match(node['name'])
        name, path = (match.group(1), match.group(2)) if match else (node['name'], 'h2h')
        attrs = node['attrs']
        read, factor = source(node)
        layer = layers.setdefault(name, dict(
            k=attr_tuple(attrs['kernel'])[0], stride=attr_tuple(attrs.get('stride'), (1,))[0],
            pad=attr_tuple(attrs.get('pad'), (0,))[0],
            chi=0, cli=0, coh=0, col=0, hh=0, hl=0, ph=1, phl=0, pll=1))
        out = shapes[(index, 0)][1]
        if path[0] == 'h':
            layer['chi'], layer['hh'] = read[1], read[2]
        else:
            layer['cli'], layer['hl'] = read[1], read[2]
        if path[2] == 'h':
            layer['coh'] = out
        else:
            layer['col'] = out
        if path == 'l2h':
            if factor != 1:
                raise ValueError('%s reads a pooled low map: floor.cpp has no such layer'
                                 % node['name'])
        else:
            layer[{'h2h': 'ph', 'h2l': 'phl', 'l2l': 'pll'}[path]] = factor
    return [(name,) + tuple(layer[key] for key in FIELDS) for name, layer in layers.items()]


def convolution_macs(layers):
    """Multiply-adds of ``layers`` (as :func:`convolution_layers` gives them) per image."""
    total = 0
    for _, k, stride, pad, chi, cli, coh, col, hh, hl, ph, phl, pll in layers:
        def side(size):
            return (size + 2 * pad - k) // stride + 1
        if coh:
            total += chi * coh * k * k * side(hh // ph) ** 2
            total += cli * coh * k * k * side(hl) ** 2
        if col:
            total += chi * col * k * k * side(hh // phl) ** 2 if phl else 0
            total += cli * col * k * k * side(hl // pll) ** 2
    return total


def onednn_prefix():
    """A venv under build/ with oneDNN 3.2's library and headers (made once)."""
    prefix = os.path.join(BUILD, 'onednn')
    if not os.path.exists(os.path.join(prefix, 'include', 'oneapi', 'dnnl', 'dnnl.hpp')):
        venv.create(prefix, with_pip=True)
        subprocess.run([os.path.join(prefix, 'bin', 'python'), '-m', 'pip', 'install',
                        '--quiet', '--no-deps'] + ONEDNN, check=True)
    return prefix


def compile_floor(prefix):
    binary = os.path.join(BUILD, 'floor')
    subprocess.run(['g++', '-O3', '-march=native', '-fopenmp', '-std=c++17',
                    os.path.join(HERE, 'floor.cpp'), '-I', os.path.join(prefix, 'include'),
                    '-L', os.path.join(prefix, 'lib'), '-ldnnl',
                    '-Wl,-rpath,' + os.path.join(prefix, 'lib'), '-o', binary], check=True)
    return binary


def _layer_rows(lines, files, networks, common, ratio=LAYER_RATIO):
    """One row per layer at ``ratio`` and arrangements allowed: its convolutions' median time
    against the same layer of vanilla's, beside its FLOP ratio and its arrangement, with
    ``common`` fields."""
    def times(index, allowed):
        return {line['layer']: line for line in lines if 'layer' in line and
                line['file'] == files[index] and line['allowed'] == allowed}
    vanilla = times(0, 'split')
    rows = []
    for allowed in ARRANGEMENTS:
        octave = times(RATIOS.index(ratio), ','.join(allowed))
        for name, layer in networks[RATIOS.index(ratio)].items():
            flops = convolution_macs([layer]) / convolution_macs([networks[0][name]])
            ms = octave[name]['ms']
            rows.append(dict(common, ratio=ratio, allowed=list(allowed), layer=name,
                             arrangement=octave[name]['arrangement'],
                             fields=dict(zip(FIELDS, layer[1:])),
                             vanilla_ms=vanilla[name]['ms'], ms=ms,
                             time_ratio=ms / vanilla[name]['ms'], conv_flop_ratio=flops))
    return rows


def _runs(files):
    """floor.cpp's network arguments: every network split, then each octave one (ratio
    above 0) in each other set of arrangements."""
    return ['%s@%s' % (path, ','.join(allowed)) for allowed in ARRANGEMENTS
            for path in (files if allowed == ('split',) else files[1:])]


def main(argv=None):
    parser = study_parser(__doc__, RESULTS)
    parser.add_argument('--rounds', type=int, default=60,
                        help='timed rounds at batch 1 (a third of them, at least 5, above)')
    return run_study(_study, parser.parse_args(argv))


def _study(args):
    """Build, run and keep the study for ``args`` (see the module); 0."""
    from octconv.train.machine import cpu_description
    cpu = cpu_description()
    os.makedirs(BUILD, exist_ok=True)
    binary = compile_floor(onednn_prefix())
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        files, macs, networks = [], [], []
        for ratio in RATIOS:
            layers = convolution_layers(ratio)
            path = os.path.join(folder, 'ratio-%s.txt' % ratio)
            with open(path, 'w') as handle:
                handle.writelines(' '.join(map(str, layer)) + '\n' for layer in layers)
            files.append(path)
            macs.append(convolution_macs(layers))
            networks.append({layer[0]: layer for layer in layers})
        for isa, flags in ISAS:
            if not set(flags) <= set(cpu['isa']):
                continue
            for batch, only in itertools.product(args.batch_sizes, (False, True)):
                env = dict(os.environ, ONEDNN_MAX_CPU_ISA=isa, OMP_NUM_THREADS=str(args.threads),
                           OMP_PROC_BIND='true')
                rounds = args.rounds if batch == 1 else max(5, args.rounds // 3)
                per_layer = only and batch == 1
                done = subprocess.run([binary] + ['--convolutions-only'] * only +
                                      ['--per-layer'] * per_layer +
                                      [str(batch), str(rounds)] + _runs(files), env=env,
                                      stdout=subprocess.PIPE, text=True, check=True)
                lines = [json.loads(line) for line in done.stdout.splitlines()]
                machine = dict(cpu, threads=args.threads, onednn='v3.2.0')
                if per_layer:
                    rows += _layer_rows(lines, files, networks, dict(
                        study='onednn-floor-layers', model='resnet50_v1b', input=224,
                        isa_limit=isa, convolutions_only=True, batch=1, machine=machine))
                timed = {(line['file'], line['allowed']): line for line in lines
                         if 'layer' not in line}
                vanilla = timed[(files[0], 'split')]
                for allowed in ARRANGEMENTS:
                    for ratio, path, mac in zip(RATIOS, files, macs):
                        result = timed.get((path, ','.join(allowed)))
                        if result is None:      # vanilla, in split only
                            continue
                        if allowed == ('split',) and result['macs_per_image'] != mac:
                            raise RuntimeError(  # floor.cpp built other layers
                                'ratio %s: floor.cpp counts %d multiply-adds, the graph %d'
                                % (ratio, result['macs_per_image'], mac))
                        rows.append(dict(
                            study='onednn-floor', model='resnet50_v1b', input=224,
                            isa_limit=isa, convolutions_only=only, allowed=list(allowed),
                            ratio=ratio, batch=batch, ms=result['ms'], min_ms=result['min_ms'],
                            time_ratio=result['ms'] / vanilla['ms'],
                            min_time_ratio=result['min_ms'] / vanilla['min_ms'],
                            conv_flop_ratio=mac / macs[0],
                            run_mac_ratio=result['macs_per_image'] / macs[0],
                            calls=result['calls'], arrangements=result['arrangements'],
                            machine=machine))
                        print(json.dumps(rows[-1]), flush=True)
    keep_run(rows, args.out, RESULTS, cpu)
    return 0


if __name__ == '__main__':
    sys.exit(main())
