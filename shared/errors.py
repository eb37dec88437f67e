"""Exceptions grouped by what the caller does about them."""


class ConfigError(Exception):
    """Bad configuration: the process prints this one line and exits non-zero.

    The message starts with the name of the setting at fault, so an operator knows what to fix.
    """

    exit_code = 2
