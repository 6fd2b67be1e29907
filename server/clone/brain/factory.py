"""Build the configured brain: ``embedded`` (default, offline) or ``openai`` (any base_url).

Settings come from the caller (the server's configuration) first, then the environment:
``TOWNHALL_BRAIN_BASE_URL`` / ``OPENAI_BASE_URL``, ``TOWNHALL_BRAIN_API_KEY`` /
``OPENAI_API_KEY`` and ``TOWNHALL_BRAIN_MODEL`` / ``OPENAI_MODEL``. Mistakes (unknown
kind, unknown setting, missing model or key) raise :class:`BrainError` saying what to set.
The openai brain may have a guard model (``guard="openai"``, :mod:`.guard`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from townhall.server.clone.brain.answer import BrainError, EscalationSink
from townhall.server.clone.brain.embedded import EmbeddedBrain
from townhall.server.clone.brain.policy import Policy
from townhall.server.clone.brain.retrieval import Retriever
from townhall.server.clone.persona import Persona

if TYPE_CHECKING:
    from townhall.server.clone.brain.guard import OpenAIGuard
    from townhall.server.clone.brain.openai_brain import OpenAIBrain

KINDS = ("embedded", "openai")
_EMBEDDED_SETTINGS = {"max_statements"}
_OPENAI_SETTINGS = {
    "base_url",
    "api_key",
    "model",
    "timeout_s",
    "max_retries",
    "temperature",
    "max_tokens",
    "max_statements",
    "guard",
    "guard_model",
    "guard_timeout_s",
}
GUARDS = ("none", "openai")
_ENV = {
    "base_url": ("TOWNHALL_BRAIN_BASE_URL", "OPENAI_BASE_URL"),
    "api_key": ("TOWNHALL_BRAIN_API_KEY", "OPENAI_API_KEY"),
    "model": ("TOWNHALL_BRAIN_MODEL", "OPENAI_MODEL"),
}


def make_brain(
    kind: str,
    persona: Persona,
    *,
    on_escalation: EscalationSink | None = None,
    env: Mapping[str, str] | None = None,
    **settings: Any,
) -> EmbeddedBrain | OpenAIBrain:
    """A brain of ``kind`` for ``persona``; escalations go to ``on_escalation``.

    The openai backend (and the ``openai`` package) is imported only when asked for.
    """
    kind = (kind or "embedded").strip().lower()
    if kind not in KINDS:
        raise BrainError(f"unknown brain kind {kind!r} (choose one of: {', '.join(KINDS)})")
    allowed = _EMBEDDED_SETTINGS if kind == "embedded" else _OPENAI_SETTINGS
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise BrainError(
            f"unknown setting(s) for the {kind} brain: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(allowed))})"
        )
    retriever = Retriever.from_persona(persona)
    policy = Policy.for_persona(persona)
    if kind == "embedded":
        return EmbeddedBrain(persona, retriever, policy, on_escalation=on_escalation, **settings)

    from townhall.server.clone.brain.openai_brain import OpenAIBrain

    environ = os.environ if env is None else env
    for key, names in _ENV.items():
        if not settings.get(key):
            settings[key] = next((environ[n] for n in names if environ.get(n)), None)
    if not settings["model"]:
        raise BrainError(
            "the openai brain needs a model: set it in the configuration or TOWNHALL_BRAIN_MODEL"
        )
    if not settings["api_key"]:
        raise BrainError(
            "the openai brain needs an API key: set it in the configuration, "
            "TOWNHALL_BRAIN_API_KEY or OPENAI_API_KEY (any placeholder for a local server)"
        )
    guard = _guard(persona, settings)
    return OpenAIBrain(
        settings.pop("base_url"),
        settings.pop("api_key"),
        settings.pop("model"),
        persona,
        retriever,
        policy=policy,
        on_escalation=on_escalation,
        guard=guard,
        **settings,
    )


def _guard(persona: Persona, settings: dict[str, Any]) -> OpenAIGuard | None:
    """The guard model of ``settings["guard"]`` (taken out of ``settings``), or ``None``.

    It speaks to the same service as the brain; ``guard_model`` defaults to the brain's.
    """
    from townhall.server.clone.brain.guard import OpenAIGuard

    kind = (settings.pop("guard", None) or "none").strip().lower()
    model = settings.pop("guard_model", None) or settings["model"]
    timeout_s = float(settings.pop("guard_timeout_s", None) or 5.0)
    if kind not in GUARDS:
        raise BrainError(f"unknown guard {kind!r} (choose one of: {', '.join(GUARDS)})")
    if kind == "none":
        return None
    if timeout_s <= 0:
        raise BrainError("guard_timeout_s must be > 0")
    return OpenAIGuard(
        persona,
        model,
        base_url=settings["base_url"],
        api_key=settings["api_key"],
        timeout_s=timeout_s,
    )
