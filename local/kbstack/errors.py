"""The launcher's failures: each is printed as one line, `kb-autosync local stack: error: ...`."""


class StackError(Exception):
    """A failure the user can act on; str() is a single line saying what to do."""
