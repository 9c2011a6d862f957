from .official import (HEAD_KEYS, ConversionError, check_against_model,
                       convert_official_state_dict, extract_state_dict,
                       reorder_classes)

__all__ = [
    'HEAD_KEYS', 'ConversionError', 'convert_official_state_dict',
    'extract_state_dict', 'check_against_model', 'reorder_classes'
]
