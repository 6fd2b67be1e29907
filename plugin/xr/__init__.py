"""The headset runtime: OpenXR session (session.py), tracking in protocol terms
(tracking.py), the headset client loop (app.py), the headset's GL context, swapchains and
projection layers (graphics.py), the desktop mirror window (mirror.py).

Drawing (OpenGL 3.3 core): render.py (the hall, the crowd, the clone, the panels) over
gl.py (programs, vertex arrays, buffer textures), shaders.py and shapes.py; the clone's VRM
is read with pygltflib and posed by model.py, skinned on the GPU by avatar_gl.py, fetched
from the room server by stagemodel.py. The stage panel and the question board are drawn by
panels.py with text.py (Pillow, DejaVu Sans); interact.py turns the pointer into votes and
hands; audio.py places the clone's voice at the stage.

Importing this package does not import OpenXR or OpenGL; the modules that need them do.
"""
