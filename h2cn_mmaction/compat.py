"""Checks of the installed OpenMMLab stack, with messages that say what to do."""
import importlib

SUPPORTED = 'mmaction2 1.1.0, or 1.2 installed from source'


def check_mmaction() -> None:
    """Import ``mmaction.models`` or explain why it cannot be imported.

    Raises:
        ImportError: mmaction2 is missing, or its PyPI 1.2.0 wheel, which lacks
            ``mmaction/models/localizers/drn``, is installed.
    """
    try:
        mmaction = importlib.import_module('mmaction')
    except ImportError as exc:
        raise ImportError(
            f'h2cn_mmaction needs MMAction2 ({SUPPORTED}): '
            f'pip install mmaction2==1.1.0') from exc
    try:
        importlib.import_module('mmaction.models')
    except ImportError as exc:  # e.g. ModuleNotFoundError for drn
        version = getattr(mmaction, '__version__', 'unknown')
        hint = ''
        if 'drn' in str(exc):
            hint = (' The mmaction2 1.2.0 wheel on PyPI lacks '
                    'mmaction/models/localizers/drn and cannot import its '
                    'models; install mmaction2==1.1.0, or 1.2.0 from a source '
                    'checkout (pip install -e <mmaction2 repo>).')
        raise ImportError(
            f'h2cn_mmaction: `import mmaction.models` failed with mmaction2 '
            f'{version}: {exc}.{hint}') from exc
