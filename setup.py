"""h2cn_mmaction: H²CN (ACM MM 2022) as an MMAction2 plugin."""
import os
import os.path as osp
import shutil
import sys

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


def add_mim_extension():
    """Put configs/, tools/ and model-index.yml into h2cn_mmaction/.mim.

    As MMAction2's setup.py: there ``mim search/train/test h2cn_mmaction``
    find the model index, the configs by name and the train/test scripts.
    Symbolic links for an editable install (``pip install -e .``: setuptools
    runs ``editable_wheel``, or ``develop`` in old versions), copies for a
    wheel or an sdist (MANIFEST.in ships them); nothing for other commands.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif 'sdist' in sys.argv or 'bdist_wheel' in sys.argv:
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'h2cn_mmaction', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        src, dst = osp.join(HERE, name), osp.join(mim_path, name)
        if not osp.exists(src):  # an unpacked sdist: .mim is there already
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        elif osp.isdir(src):
            shutil.copytree(
                src, dst, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(src, dst)


add_mim_extension()
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
    # MMAction2's label maps (h2cn_mmaction.datasets.labels); the .mim folder
    # (configs, tools, model-index.yml) is listed in MANIFEST.in
    package_data={'h2cn_mmaction': ['datasets/label_maps/*.txt']},
    include_package_data=True,
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
