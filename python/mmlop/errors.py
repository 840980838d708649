"""The package's exception base: every error mmlop raises about a user's input derives from :class:`MmlopError`."""


class MmlopError(Exception):
    """Base of every mmlop error; the message names the file, field or value and what was expected."""
