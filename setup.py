"""h2cn_mmaction: H²CN (ACM MM 2022) as an MMAction2 plugin."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    scope = {}
    with open(osp.join(HERE, 'h2cn_mmaction', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    with open(osp.join(HERE, 'requirements', name)) as f:
        return [
            line.split('#')[0].strip() for line in f
            if line.split('#')[0].strip() and not line.startswith('-')
        ]


setup(
    name='h2cn_mmaction',
    version=read_version(),
    description='H²CN: Hierarchical Hourglass Convolutional Network '
    '(ACM MM 2022) for MMAction2',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(include=['h2cn_mmaction', 'h2cn_mmaction.*']),
    # MMAction2's label maps (h2cn_mmaction.datasets.labels)
    package_data={'h2cn_mmaction': ['datasets/label_maps/*.txt']},
    # torch within the tested range (the user installs the build for the
    # machine's CUDA first); mmcv (or mmcv-lite) is left to the user, as in
    # MMAction2: installing one beside the other would break both.
    install_requires=read_requirements('runtime.txt'),
    extras_require=dict(tests=read_requirements('tests.txt')),
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
