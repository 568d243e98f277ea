"""Installs the top-level folders as the package ``octconv``."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

SUBPACKAGES = ('symbol', 'gluon', 'train', 'utils')

# One set of pins for Python 3.11, 3.12 and 3.13. mxnet 1.9.1 needs numpy < 2 (and the
# shim in _compat.py from numpy 1.24 on); numpy 1.26.4 has no wheel for 3.13 and is built
# there from its source. Every package below has wheels for 3.11-3.13 that take numpy
# 1.26; unpinned, GluonCV's requirements pull releases that need numpy 2.
INSTALL_REQUIRES = [
    'mxnet==1.9.1', 'numpy==1.26.4', 'gluoncv==0.10.5.post0', 'opencv-python==4.11.0.86',
    'scipy==1.15.3', 'matplotlib==3.10.9', 'contourpy==1.3.2', 'pandas==2.3.3',
    'pillow==13.0.0', 'scikit-learn==1.5.2', 'tqdm==4.70.1',
    'setuptools==75.8.0; python_version >= "3.12"',     # provides distutils, which mxnet imports
]
# onnx has no 3.13 wheel before 1.18, whose files (IR 11) need onnxruntime 1.23 to load.
ONNX = ['onnx==1.16.2; python_version < "3.13"', 'onnx==1.18.0; python_version >= "3.13"']
ONNXRUNTIME = ['onnxruntime==1.22.1; python_version < "3.13"',
               'onnxruntime==1.23.2; python_version >= "3.13"']


# startup/: the .pth start-up hook that lets `import mxnet` work before `import octconv`
# (numpy.bool for mxnet 1.9.1), installed at the top of site-packages with its module.
STARTUP_PTH = 'startup/octconv-mxnet-compat.pth'


class BuildPy(build_py):
    """Leave ``setup.py`` out of the ``octconv`` package (the repo root is its folder), and
    put the start-up .pth file at the top of the built tree (site-packages)."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == 'octconv' and m[1] == 'setup')]

    def run(self):
        super().run()
        self.copy_file(STARTUP_PTH, os.path.join(self.build_lib, os.path.basename(STARTUP_PTH)))


setup(
    name='octconv',
    version='0.6.0',
    description='Octave Convolution (Drop an Octave, ICCV 2019) for MXNet Symbol and Gluon',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.11,<3.14',
    packages=['octconv'] + ['octconv.' + name for name in SUBPACKAGES],
    py_modules=['_octconv_mxnet_compat'],
    package_dir=dict({'octconv': '.', '': 'startup'},
                     **{'octconv.' + name: name for name in SUBPACKAGES}),
    install_requires=INSTALL_REQUIRES,
    extras_require={'onnx': ONNX + ONNXRUNTIME,
                    'openvino': ONNX + ['openvino==2026.4.1'],
                    'test': ['pytest==9.2.0', 'pytest-xdist==3.8.0', 'execnet==2.1.2',
                             'openvino==2026.4.1'] + ONNX + ONNXRUNTIME},
    entry_points={'console_scripts': [
        'octconv-flops = octconv.train.flops_report:main',
        'octconv-summary = octconv.train.summary:main',
        'octconv-plot-ablation = octconv.train.plot_ablation:main',
        'octconv-im2rec = octconv.utils.im2rec:main',
        'octconv-score = octconv.train.score:main',
        'octconv-train = octconv.train.train_imagenet:main',
        'octconv-launch = octconv.train.launch:main',
        'octconv-bench = octconv.train.bench:main',
    ]},
    cmdclass={'build_py': BuildPy},
)
