"""The headset runtime: OpenXR session (session.py), tracking in protocol terms
(tracking.py), the headset client loop (app.py), OpenGL rendering of the hall, crowd and
clone (render.py), the headset's GL context, swapchains and projection layers
(graphics.py), the desktop mirror window (mirror.py) and audio output (audio.py).

Importing this package does not import OpenXR or OpenGL; the modules that need them do.
"""
