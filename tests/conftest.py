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


@pytest.fixture(scope='session', autouse=True)
def _mmaction_scope():
    import h2cn_mmaction  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')


@pytest.fixture
def python():
    return sys.executable


def assert_same_function(got, want, inputs, tol=1e-10):
    """``got`` equals ``want``, and so do their gradients with respect to
    every tensor of ``inputs`` (inputs and parameters) for one random
    output gradient."""
    import torch
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    g = torch.randn_like(want)
    grads = zip(torch.autograd.grad(got, inputs, g, allow_unused=True),
                torch.autograd.grad(want, inputs, g, allow_unused=True))
    for i, (a, b) in enumerate(grads):
        if a is None or b is None:
            assert a is None and b is None, f'gradient {i}: one is None'
        else:
            torch.testing.assert_close(a, b, rtol=tol, atol=tol,
                                       msg=f'gradient {i}')
