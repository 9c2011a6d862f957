"""Constructor argument checks whose errors a caller can name by config key."""


class ArgumentError(ValueError):
    """A constructor argument outside what is allowed.

    ``arg``, ``allowed`` and ``value`` say which argument, what it may be and
    what was given, so that :class:`ResNetH2CN` can repeat the message under
    the argument's config key (``model.backbone.cmcb_cfg.slope``).
    """

    arg = allowed = value = None


def check_arg(ok: bool, owner: str, arg: str, allowed: str, value) -> None:
    """Raise an :class:`ArgumentError` unless ``ok``.

    Args:
        ok (bool): Whether ``value`` is allowed.
        owner (str): The class whose argument it is.
        arg (str): The argument's name.
        allowed (str): What it may be, e.g. ``'an odd integer >= 1'``.
        value: What was given.
    """
    if not ok:
        err = ArgumentError(f'{owner}: {arg} must be {allowed}, got '
                            f'{value!r}.')
        err.arg, err.allowed, err.value = arg, allowed, value
        raise err


def is_int(value) -> bool:
    """Whether ``value`` is an integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)
