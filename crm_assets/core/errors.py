"""User-facing errors: one line naming the file, column, key or argument."""


class CrmError(Exception):
    """A user error (bad input, bad argument, locked warehouse).

    Its message is one line, printed as it is by the CLI without a traceback.
    """


class InputFileError(CrmError):
    """An input file that stops the load: missing, unreadable, missing column, duplicate key.

    ``check`` names the blocking raw-layer check that failed.
    """

    def __init__(self, message: str, check: str = "readable_with_required_columns"):
        super().__init__(message)
        self.check = check
