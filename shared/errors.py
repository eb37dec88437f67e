"""Exceptions grouped by what the caller does about them."""


class ConfigError(Exception):
    """Bad configuration: the process prints this one line and exits non-zero.

    The message starts with the name of the setting at fault, so an operator knows what to fix.
    """

    exit_code = 2


class InputError(ValueError):
    """Input that cannot be saved (the API answers 400); nothing was written.

    `fields` maps each bad field (dotted path, such as `imap.port`) to what is wrong with it.
    """

    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in fields.items()))
