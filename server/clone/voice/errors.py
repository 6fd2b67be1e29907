"""Why a voice could not speak: one exception family the director can catch."""

from __future__ import annotations


class VoiceError(Exception):
    """A sentence could not be turned into speech (engine failure, service error, bad audio)."""


class UnsupportedLanguageError(VoiceError, ValueError):
    """The voice has no rendering for the requested language.

    Also a ValueError: it is the caller's input that is wrong, not the engine.
    """

    def __init__(self, language: str, supported: tuple[str, ...]) -> None:
        self.language = language
        self.supported = supported
        super().__init__(f"unsupported language {language!r}; supported: {', '.join(supported)}")
