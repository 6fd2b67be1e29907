"""The one exception a bad scene file raises, pointing at the offending value."""

from __future__ import annotations


class SceneError(ValueError):
    """A scene file is unreadable, malformed or geometrically impossible.

    ``pointer`` is a JSON pointer (RFC 6901) into the document so an author can
    find the value; ``""`` means the whole document. JSON syntax errors also
    carry ``line`` and ``column`` (1-based).
    """

    def __init__(
        self,
        file: str,
        pointer: str,
        reason: str,
        *,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(file, pointer, reason)
        self.file = file
        self.pointer = pointer
        self.reason = reason
        self.line = line
        self.column = column

    def __str__(self) -> str:
        # An empty pointer is the correct RFC 6901 pointer to the root, but it
        # reads like a missing value in "file: : reason".
        return f"{self.file}: {self.pointer or '(root)'}: {self.reason}"

    def __repr__(self) -> str:
        return f"SceneError({self.file!r}, {self.pointer!r}, {self.reason!r})"


def pointer(*parts: str | int) -> str:
    """Build a JSON pointer, escaping ``~`` and ``/`` inside keys."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
