"""User-facing errors: one exception type whose message is the single line the CLI prints."""


class TwinError(Exception):
    """An error a user can cause (bad file, bad field, locked database, unknown run id).

    The message is one line that names the file, field, address or id; the CLI prints it and exits non-zero.
    """

    exit_code = 2
