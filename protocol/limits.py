"""Wire limits shared by both ends; SPEC.md lists them and tests keep the two in step."""

from __future__ import annotations

PROTOCOL_VERSION = 1
MIN_PROTOCOL_VERSION = 1

MAX_CLIENT_FRAME_BYTES = 8 * 1024  # largest binary frame a client may send
MAX_TOKEN_CHARS = 4096
MAX_NAME_CHARS = 64
MAX_USER_ID_CHARS = 128
MAX_REASON_CHARS = 512
MAX_CLIENT_INFO_CHARS = 128
MAX_POSE_HZ = 30  # attendees may send Pose at up to this rate
POSE_BYTES = 30  # size of one quantized pose (head, left hand, right hand)
MAX_SLOT = 65535  # participant slot numbers are uint16 on the wire
NO_SEAT = -1
MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 4000
MAX_SDP_CHARS = 6000  # a WebRTC offer or answer (audio only, candidates inline)
JOIN_TIMEOUT_S = 10.0
RESUME_WINDOW_S = 60.0
