"""The clone's model for the headset: the same VRM the server gives /watch.

``/avatar.json`` on the room server names it (the persona's own model or the one built
from its appearance); it is fetched over HTTP from the host of the room's WebSocket URL.
When that fails (an old server, a model that does not load) the headset builds the
default appearance locally and says so in the log: the stage is never empty.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request

from .model import ModelError, VrmModel, load_vrm

log = logging.getLogger("townhall.plugin.xr")


def http_base(ws_url: str) -> str:
    u = urllib.parse.urlsplit(ws_url)
    scheme = "https" if u.scheme == "wss" else "http"
    return f"{scheme}://{u.netloc}"


def fetch_stage_model(ws_url: str, timeout_s: float = 20.0) -> VrmModel:
    """Blocking (call it in a thread): the server's stage model, or the local fallback."""
    base = http_base(ws_url)
    try:
        with urllib.request.urlopen(base + "/avatar.json", timeout=timeout_s) as resp:
            info = json.loads(resp.read())
        path = info.get("vrm") if isinstance(info, dict) else None
        if not isinstance(path, str) or not path.startswith("/"):
            raise ModelError("the server names no model")
        with urllib.request.urlopen(base + path, timeout=timeout_s) as resp:
            return load_vrm(resp.read())
    except (OSError, ValueError) as err:
        log.warning("no stage model from %s (%s): showing the default avatar", base, err)
        return default_model()


def default_model() -> VrmModel:
    from townhall.server.clone.avatar.appearance import Appearance
    from townhall.server.clone.avatar.source import built_model

    return load_vrm(built_model(Appearance(), "Avatar"))
