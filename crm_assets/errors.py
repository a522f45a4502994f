"""User-facing errors: one line naming the file, column, key or argument."""


class CrmError(Exception):
    """A user error (bad input, bad argument, locked warehouse).

    Its message is one line, printed as it is by the CLI without a traceback.
    """


class InputFileError(CrmError):
    """An input file that stops the load: missing, unreadable, missing column, duplicate key."""
