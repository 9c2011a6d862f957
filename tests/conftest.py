import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIXTURES = os.environ.get(
    'H2CN_OFFICIAL_FIXTURES',
    osp.join(osp.dirname(ROOT), 'shared', 'fixtures', 'official_h2cn'))


def load_script(path):
    """The script at ``path`` (relative to the repository) as a module, to
    call its functions in-process."""
    import importlib.util
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tool(name):
    """``tools/<name>.py`` as a module (:func:`load_script`)."""
    return load_script(osp.join('tools', f'{name}.py'))


def load_synthetic():
    """The synthetic benchmark generator, ``tools/data/synthetic.py``."""
    return load_script(osp.join('tools', 'data', 'generate_synthetic.py')) \
        .load_synthetic()


@pytest.fixture(scope='session', autouse=True)
def _mmaction_scope():
    import h2cn_mmaction  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')


@pytest.fixture
def python():
    return sys.executable
