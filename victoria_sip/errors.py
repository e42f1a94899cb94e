"""Victoria's own exceptions, so callers catch by meaning.

Adapters translate library errors at their edge (``raise ... from exc``); the
messages are written for the person who has to act on them: a PBX admin or ops.
"""


class VictoriaError(Exception):
    """Base of every error Victoria raises on purpose."""


class ConfigError(VictoriaError):
    """A configuration file or value is wrong. Names the file, the key and what was expected."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


class SipError(VictoriaError):
    """The SIP stack could not start or do what was asked (port in use, bad URI...)."""


class RegistrationError(SipError):
    """A registrar refused or did not answer a REGISTER."""


class ModelError(VictoriaError):
    """A speech or language model is missing, broken or failed while working."""


class RepositoryError(VictoriaError):
    """The call database could not be opened or written."""
