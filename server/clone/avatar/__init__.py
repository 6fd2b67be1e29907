"""The clone's avatar: a VRM 1.0 model built from the persona's ``[appearance]``.

``build_avatar(appearance)`` returns the file's bytes; ``townhall avatar build DIR`` writes
it. Modules: appearance (the persona table), skeleton (bones sized from the body), mesh
(surface building blocks), head (face, eyes, mouth, expression morphs), body (torso, limbs,
clothes), hair (hair styles, glasses), vrm (glTF/VRM writing with pygltflib), build.
"""
