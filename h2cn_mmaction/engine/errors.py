"""Errors raised by the consistency checks of :mod:`h2cn_mmaction.engine`.

All derive from :class:`ValueError` so that code catching the errors MMEngine
or MMAction2 raise for a bad config keeps working; each message names what to
fix (the config key or the file and line) and what was expected.
"""


class ConfigCheckError(ValueError):
    """Config keys that disagree (keyframes, frames per keyframe, slopes)."""


class AnnotationError(ValueError):
    """An annotation list line that cannot be used (label out of range...)."""


class CheckpointMismatchError(ValueError):
    """A checkpoint whose weights do not fit the model the config builds."""


def first_line(exc: BaseException) -> str:
    """First non-empty line of an exception message (decord's are long), or
    the exception's type name when the message is empty.

    Args:
        exc (BaseException): The exception.

    Returns:
        str: One line for an error message.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def user_error(exc: BaseException) -> BaseException:
    """Mark ``exc`` (of a built-in type) as a problem of the user's input
    whose message says what to fix: ``tools/`` print it on one line instead
    of a traceback.

    Args:
        exc (BaseException): The exception.

    Returns:
        BaseException: ``exc``.
    """
    exc.h2cn_user_error = True
    return exc


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is bad input with a message that says what to fix:
    the errors of this module, the weights-only loader's refusals and
    damaged-file errors, or an exception marked by :func:`user_error`."""
    from ..checkpoint import CheckpointCorruptedError, CheckpointRefusedError
    return isinstance(exc, (ConfigCheckError, AnnotationError,
                            CheckpointMismatchError, CheckpointRefusedError,
                            CheckpointCorruptedError)) or \
        getattr(exc, 'h2cn_user_error', False)
