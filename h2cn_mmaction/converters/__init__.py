from .official import (ConversionError, check_against_model,
                       convert_official_state_dict, extract_state_dict)

__all__ = [
    'ConversionError', 'convert_official_state_dict', 'extract_state_dict',
    'check_against_model'
]
