"""The adapters' user-facing error: a one-line message naming the endpoint, file, node or option.

`adapters` must not import `twin`; the CLI prints this error like `twin.errors.TwinError` (one line, exit 2).
"""


class OpcUaUserError(Exception):
    """A user-caused problem (bad endpoint or tag map, missing certificate, refused session): one line."""
