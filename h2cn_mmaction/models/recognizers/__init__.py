from .recognizer_h2cn import RecognizerH2CN

__all__ = ['RecognizerH2CN']
