def merged(base, overrides):
    """A new dict: base updated with overrides. Neither argument is changed."""
    base.update(overrides)
    return base
