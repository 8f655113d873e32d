"""The one exception type a user of the kit is meant to read; introduced in notebooks/00_setup_check.

Every predictable mistake (wrong folder, unreadable image, wrong checkpoint, a size the
network cannot take) raises ``DRBNError`` with a one-line message that says what to do.
The command line prints that line instead of a stack trace.
"""


class DRBNError(ValueError):
    """A user-facing error: the message alone must tell the user what to do next."""
