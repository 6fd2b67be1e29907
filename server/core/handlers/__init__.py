"""The room's message handlers, one module per subject; importing this registers them all."""

from townhall.server.core.handlers import clone, mics, people, presence, questions, studio

__all__ = ["clone", "mics", "people", "presence", "questions", "studio"]
