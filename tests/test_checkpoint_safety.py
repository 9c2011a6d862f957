"""Checkpoints load weights-only: MMEngine's own objects pass, nothing else
is unpickled or executed."""
import pickle

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))  # would create the marker file


class _AsksGetattr:
    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def test_mmengine_objects_round_trip(tmp_path):
    buf = HistoryBuffer()
    buf.update(2.0)
    buf.update(4.0)
    path = tmp_path / 'ok.pth'
    torch.save({'message_hub': {'log_scalars': {'loss': buf}},
                'state_dict': {'w': torch.ones(2)}}, path)
    ck = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert ck['message_hub']['log_scalars']['loss'].mean() == 3.0


def test_planted_code_is_neither_loaded_nor_run(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _RunsCode(str(marker))}, path)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_getattr_is_restricted_to_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': _AsksGetattr()}, path)
    with pytest.raises(pickle.UnpicklingError,
                       match="only HistoryBuffer statistics methods"):
        torch.load(path)
