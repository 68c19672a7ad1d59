"""User-facing errors: the message names the problem and the fix; the CLI prints it on one line."""


class PosekitError(Exception):
    """A mistake or condition the user can fix (bad input, no network, unknown model, bad config)."""


class OfflineError(PosekitError):
    """A file is needed from the network but the network is off or unreachable."""
