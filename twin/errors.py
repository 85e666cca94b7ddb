"""User-facing errors: one exception type whose message is the single line the CLI prints."""


class TwinError(Exception):
    """An error a user can cause (bad file, bad field, locked database, unknown run id).

    The message is one line that names the file, field, address or id; the CLI prints it and exits non-zero.
    """

    exit_code = 2


def user_error_types() -> tuple[type[Exception], ...]:
    """Every exception type whose message is a one-line user error: TwinError and the adapters' own."""
    from adapters.opcua.errors import OpcUaUserError

    return (TwinError, OpcUaUserError)
