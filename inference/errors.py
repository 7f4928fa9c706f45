"""The one error type the user sees as a sentence, not a traceback."""


class InputError(Exception):
    """A user mistake (bad path, unreadable file, impossible option), worded as one clear sentence."""
