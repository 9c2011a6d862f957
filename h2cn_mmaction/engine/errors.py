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
