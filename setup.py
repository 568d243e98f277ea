"""Installs the top-level folders as the package ``octconv``."""
from setuptools import setup
from setuptools.command.build_py import build_py

SUBPACKAGES = ('symbol', 'gluon', 'train', 'utils')


class BuildPy(build_py):
    """Leave ``setup.py`` out of the ``octconv`` package (the repo root is its folder)."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == 'octconv' and m[1] == 'setup')]


setup(
    name='octconv',
    version='0.1.0',
    description='Octave Convolution (Drop an Octave, ICCV 2019) for MXNet Symbol and Gluon',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.8,<3.12',
    packages=['octconv'] + ['octconv.' + name for name in SUBPACKAGES],
    package_dir=dict({'octconv': '.'}, **{'octconv.' + name: name for name in SUBPACKAGES}),
    install_requires=['mxnet==1.9.1', 'numpy==1.23.5', 'gluoncv==0.10.5.post0', 'matplotlib',
                      'tqdm', 'scikit-learn==1.5.2'],
    extras_require={'onnx': ['onnx==1.16.2', 'onnxruntime==1.22.1'],
                    'openvino': ['onnx==1.16.2', 'openvino==2026.4.1'],
                    'test': ['pytest', 'onnx==1.16.2', 'onnxruntime==1.22.1',
                             'openvino==2026.4.1']},
    entry_points={'console_scripts': [
        'octconv-flops = octconv.utils.flops:main',
        'octconv-summary = octconv.utils.summary:main',
        'octconv-plot-ablation = octconv.utils.plot_ablation:main',
        'octconv-im2rec = octconv.utils.im2rec:main',
        'octconv-score = octconv.train.score:main',
        'octconv-train = octconv.train.train_imagenet:main',
        'octconv-launch = octconv.utils.launch:main',
        'octconv-bench = octconv.utils.bench:main',
    ]},
    cmdclass={'build_py': BuildPy},
)
