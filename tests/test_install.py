"""The README's install commands resolve a tested stack, and the package
ships its data.

The commands of the README's "## Install" block are resolved as typed by pip
(``--dry-run``) in a fresh virtual environment, under the pins of
``requirements/ci.txt`` for every package the test does not assert on.
"""
import json
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
import zipfile

import pytest
from packaging.version import Version

from conftest import ROOT

#: The torch versions the tests and benchmarks ran on (2.13.0 CPU, 2.11.0
#: CUDA): what an install must resolve to.
TESTED_TORCH = (Version('2.11'), Version('2.14'))
#: Packages whose resolved version is asserted: not pinned by ci.txt here.
ASSERTED = ('torch', 'torchvision', 'mmaction2', 'mmengine', 'mmcv-lite')


def readme_install_commands():
    """``pip install`` lines of the first ``bash`` block of the README's
    "## Install" section, continuation lines joined, comments dropped."""
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    section = re.search(r'^## Install\n(.*?)(?=^## )', text, re.M | re.S)
    assert section, 'README.md has no "## Install" section'
    block = re.search(r'```bash\n(.*?)```', section.group(1), re.S)
    assert block, 'the "## Install" section has no ```bash block'
    lines = block.group(1).replace('\\\n', ' ').splitlines()
    commands = [shlex.split(line, comments=True) for line in lines]
    return [c for c in commands if c[:2] == ['pip', 'install']]


def pip(venv, *args):
    return subprocess.run([osp.join(venv, 'bin', 'python'), '-m', 'pip',
                           *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_readme_install_resolves_a_tested_stack(tmp_path):
    commands = readme_install_commands()
    assert commands[-1][2:] == ['-e', '.'], commands
    venv = str(tmp_path / 'venv')
    subprocess.run([sys.executable, '-m', 'venv', venv], check=True,
                   timeout=300)
    probe = pip(venv, 'install', '--dry-run', '--no-deps', '--quiet',
                '--timeout', '15', '--retries', '1', 'mmaction2==1.1.0')
    if probe.returncode != 0:
        pytest.skip('pip cannot reach a package index: ' +
                    (probe.stderr.strip().splitlines() or ['?'])[-1])
    pins = [line for line in open(osp.join(ROOT, 'requirements', 'ci.txt'))
            if re.match(r'[A-Za-z]', line) and
            re.split(r'[=<>!~ ]', line)[0].lower() not in ASSERTED]
    constraints = tmp_path / 'constraints.txt'
    constraints.write_text(''.join(pins))
    report = tmp_path / 'report.json'
    # the commands are run as one resolution: what the last would install
    # on top of the others
    args = [a for c in commands for a in c[2:]]
    res = pip(venv, 'install', '--dry-run', '--quiet', '--report',
              str(report), '-c', str(constraints), *args)
    assert res.returncode == 0, res.stderr[-3000:]
    versions = {
        item['metadata']['name'].lower().replace('_', '-'):
        Version(item['metadata']['version'])
        for item in json.loads(report.read_text())['install']
    }
    assert versions['mmaction2'] == Version('1.1.0'), versions
    assert versions['mmengine'].release[:2] == (0, 10), versions
    torch = Version(versions['torch'].base_version)
    assert TESTED_TORCH[0] <= torch < TESTED_TORCH[1], versions
    assert 'h2cn-mmaction' in versions and 'mmcv-lite' in versions


def test_wheel_ships_the_label_maps(tmp_path):
    """``package_data``: wheels carry the label maps (an editable install
    reads them from the checkout)."""
    src = tmp_path / 'src'
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        '.venv', '.git', 'work_dirs', 'data', 'build', '*.egg-info',
        '__pycache__', 'docs', 'tests'))
    res = subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '--quiet', '-w',
        str(tmp_path / 'dist'), str(src)
    ], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    wheel, = os.listdir(tmp_path / 'dist')
    names = zipfile.ZipFile(tmp_path / 'dist' / wheel).namelist()
    from h2cn_mmaction.datasets import LABEL_MAPS
    for file in LABEL_MAPS.values():
        assert f'h2cn_mmaction/datasets/label_maps/{file}' in names
