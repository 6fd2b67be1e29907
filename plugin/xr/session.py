"""The OpenXR side of the headset: instance, system, session states, spaces, actions, frames.

Thin over pyopenxr (Python bindings plus the Khronos loader). ``Headset`` owns one
instance and session and walks the session lifecycle the spec lays out:

    IDLE -> READY (xrBeginSession) -> SYNCHRONIZED -> VISIBLE -> FOCUSED
         -> ... -> STOPPING (xrEndSession) -> IDLE -> EXITING (done)
    LOSS_PENDING: the runtime lost the device; end, destroy, and the app may start over.

``poll()`` handles events; ``wait_frame()``/``end_frame()`` run the frame loop whenever the
session is running; ``sample(display_time)`` locates head, hands and gaze for the frame's
predicted display time and reads the raise-hand button.

Graphics: with ``headless=False`` the session is an OpenGL one (XR_KHR_opengl_enable,
``graphics.GLGraphics``: a GL context, one swapchain per eye) and ``render()`` draws both
eyes and returns the projection layer for ``end_frame``. With ``headless=True``
(XR_MND_headless) there are no pixels: tracking and timing only. ``headless=None`` picks
OpenGL when the runtime offers it and a GL context can be made, else headless. A caller
with its own graphics binding passes it as ``session_next`` and renders itself.
"""

from __future__ import annotations

import ctypes
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xr

from . import tracking
from .tracking import Pose7, TrackingSample

log = logging.getLogger("townhall.plugin.xr")

OPTIONAL_EXTENSIONS = (
    "XR_KHR_convert_timespec_time",
    "XR_EXT_eye_gaze_interaction",
    "XR_FB_face_tracking2",
    "XR_HTC_facial_tracking",
    "XR_FB_body_tracking",
)
HEADLESS = "XR_MND_headless"
GL_ENABLE = "XR_KHR_opengl_enable"

# Controllers we suggest bindings for: the raise-hand button, the select trigger (the
# pointer's click on the question board) and the grip poses.
PROFILES = {
    "/interaction_profiles/khr/simple_controller": "/user/hand/left/input/select/click",
    "/interaction_profiles/oculus/touch_controller": "/user/hand/right/input/a/click",
    "/interaction_profiles/valve/index_controller": "/user/hand/right/input/a/click",
}
SELECT = {
    "/interaction_profiles/khr/simple_controller": "/user/hand/right/input/select/click",
    "/interaction_profiles/oculus/touch_controller": "/user/hand/right/input/trigger/value",
    "/interaction_profiles/valve/index_controller": "/user/hand/right/input/trigger/click",
}
EYE_PROFILE = "/interaction_profiles/ext/eye_gaze_interaction"


class HeadsetError(RuntimeError):
    """OpenXR is not usable: no runtime, no system, or a call failed."""


@dataclass
class HeadsetStatus:
    state: xr.SessionState = xr.SessionState.UNKNOWN
    running: bool = False  # between xrBeginSession and xrEndSession
    exit: bool = False  # EXITING (or lost): leave the frame loop
    lost: bool = False  # LOSS_PENDING or instance loss: may start over
    history: list[xr.SessionState] = field(default_factory=list)


def _pose7(p: Any) -> Pose7:
    o, q = p.position, p.orientation
    return (o.x, o.y, o.z, q.x, q.y, q.z, q.w)


class Headset:
    """One OpenXR instance and session; use ``open()``/``close()`` or ``with``."""

    def __init__(self, *, headless: bool | None = True, app_name: str = "Townhall") -> None:
        self.headless = headless  # None until open() has chosen
        self.app_name = app_name
        self.status = HeadsetStatus()
        self.extensions: set[str] = set()
        self.instance: Any = None
        self.system: Any = None
        self.session: Any = None
        self.runtime_name = ""
        self._spaces: dict[str, Any] = {}
        self._paths: dict[str, Any] = {}
        self._face: Any = None
        self._body: Any = None
        self._lift = 0.0
        self.frame_state: Any = None
        self.graphics: Any = None  # GLGraphics for an OpenGL session we render ourselves

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> Headset:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, session_next: Any = None) -> None:
        try:
            available = {
                e.extension_name.decode() for e in xr.enumerate_instance_extension_properties()
            }
        except xr.XrException as err:
            raise HeadsetError(
                f"no OpenXR runtime: {err} (start the headset's runtime, or use --window)"
            ) from err
        wanted = [e for e in OPTIONAL_EXTENSIONS if e in available]
        if self.headless is None:
            gl = GL_ENABLE in available and self._make_graphics(HEADLESS in available)
            self.headless = not gl
        elif not self.headless and session_next is None and GL_ENABLE in available:
            self._make_graphics(False)
        required = HEADLESS if self.headless else GL_ENABLE
        if required not in available:
            self._close_graphics()
            raise HeadsetError(f"the OpenXR runtime does not offer {required}")
        self.extensions = {required, *wanted}
        try:
            self._open(session_next)
        except BaseException:
            self.close()  # a half-open instance, session or GL context
            raise
        log.info("OpenXR %s: extensions %s", self.runtime_name, sorted(self.extensions))

    def _open(self, session_next: Any) -> None:
        self.instance = xr.create_instance(
            xr.InstanceCreateInfo(
                application_info=xr.ApplicationInfo(self.app_name, 1, "townhall", 1),
                enabled_extension_names=sorted(self.extensions),
            )
        )
        self.runtime_name = xr.get_instance_properties(self.instance).runtime_name.decode()
        self.system = xr.get_system(
            self.instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY)
        )
        if "XR_EXT_eye_gaze_interaction" in self.extensions and not self._eye_gaze_supported():
            self.extensions.discard("XR_EXT_eye_gaze_interaction")
        if self.graphics is not None:
            session_next = self.graphics.session_next(self.instance, self.system)
        self.session = xr.create_session(
            self.instance, xr.SessionCreateInfo(system_id=self.system, next=session_next)
        )
        if self.graphics is not None:
            self.graphics.create_swapchains(self.instance, self.system, self.session)
        self._create_spaces()
        self._create_actions()
        self._create_trackers()

    def _make_graphics(self, can_fall_back: bool) -> bool:
        from .graphics import GLGraphics, GraphicsError

        try:
            self.graphics = GLGraphics()
        except GraphicsError as err:
            if not can_fall_back:
                raise HeadsetError(f"no OpenGL for the headset: {err}") from err
            log.warning("no OpenGL (%s): headless session, nothing is shown in the headset", err)
            return False
        return True

    def _close_graphics(self) -> None:
        if self.graphics is not None:
            self.graphics.close()
            self.graphics = None

    def close(self) -> None:
        if self.graphics is not None:
            self.graphics.destroy_swapchains()  # swapchains go before their session
        for tracker, destroy in (
            (self._face, "destroy_face_tracker2_fb"),
            (self._body, "destroy_body_tracker_fb"),
        ):
            if tracker is not None:
                getattr(xr, destroy)(tracker)
        self._face = self._body = None
        for space in self._spaces.values():
            xr.destroy_space(space)
        self._spaces.clear()
        if self.session is not None:
            xr.destroy_session(self.session)
            self.session = None
        if self.instance is not None:
            xr.destroy_instance(self.instance)
            self.instance = None
        self._close_graphics()

    def _eye_gaze_supported(self) -> bool:
        props = xr.SystemEyeGazeInteractionPropertiesEXT()
        sysprops = xr.SystemProperties(next=ctypes.cast(ctypes.pointer(props), ctypes.c_void_p))
        xr.raw_functions.xrGetSystemProperties(self.instance, self.system, ctypes.byref(sysprops))
        return bool(props.supports_eye_gaze_interaction)

    def _path(self, s: str) -> Any:
        if s not in self._paths:
            self._paths[s] = xr.string_to_path(self.instance, s)
        return self._paths[s]

    def _create_spaces(self) -> None:
        kinds = set(xr.enumerate_reference_spaces(self.session))
        world = (
            xr.ReferenceSpaceType.STAGE
            if xr.ReferenceSpaceType.STAGE.value in kinds
            else xr.ReferenceSpaceType.LOCAL
        )
        # LOCAL's origin is the eyes at start: lift it to the seat's floor point.
        self._lift = 0.0 if world == xr.ReferenceSpaceType.STAGE else tracking.SEATED_EYE_HEIGHT_M
        for name, kind in (("world", world), ("view", xr.ReferenceSpaceType.VIEW)):
            self._spaces[name] = xr.create_reference_space(
                self.session, xr.ReferenceSpaceCreateInfo(reference_space_type=kind)
            )
        self.world_space_type = world

    def _create_actions(self) -> None:
        self.action_set = xr.create_action_set(
            self.instance, xr.ActionSetCreateInfo("townhall", "Townhall", 0)
        )
        hands = [self._path("/user/hand/left"), self._path("/user/hand/right")]
        self.hand_paths = hands
        self.grip = xr.create_action(
            self.action_set,
            xr.ActionCreateInfo("hand_pose", xr.ActionType.POSE_INPUT, None, hands, "Hand pose"),
        )
        self.raise_button = xr.create_action(
            self.action_set,
            xr.ActionCreateInfo(
                "raise_hand", xr.ActionType.BOOLEAN_INPUT, None, None, "Raise hand"
            ),
        )
        self.select_button = xr.create_action(
            self.action_set,
            xr.ActionCreateInfo("select", xr.ActionType.BOOLEAN_INPUT, None, None, "Select"),
        )
        for profile, button in PROFILES.items():
            bindings = [
                xr.ActionSuggestedBinding(self.grip, self._path(f"/user/hand/{s}/input/grip/pose"))
                for s in ("left", "right")
            ]
            bindings.append(xr.ActionSuggestedBinding(self.raise_button, self._path(button)))
            bindings.append(
                xr.ActionSuggestedBinding(self.select_button, self._path(SELECT[profile]))
            )
            xr.suggest_interaction_profile_bindings(
                self.instance,
                xr.InteractionProfileSuggestedBinding(self._path(profile), None, bindings),
            )
        self.gaze = None
        if "XR_EXT_eye_gaze_interaction" in self.extensions:
            self.gaze = xr.create_action(
                self.action_set,
                xr.ActionCreateInfo("eye_gaze", xr.ActionType.POSE_INPUT, None, None, "Eye gaze"),
            )
            xr.suggest_interaction_profile_bindings(
                self.instance,
                xr.InteractionProfileSuggestedBinding(
                    self._path(EYE_PROFILE),
                    None,
                    [
                        xr.ActionSuggestedBinding(
                            self.gaze, self._path("/user/eyes_ext/input/gaze_ext/pose")
                        )
                    ],
                ),
            )
            self._spaces["gaze"] = xr.create_action_space(
                self.session, xr.ActionSpaceCreateInfo(self.gaze, xr.NULL_PATH, xr.Posef())
            )
        for side, path in zip(("left", "right"), hands, strict=True):
            self._spaces[side] = xr.create_action_space(
                self.session, xr.ActionSpaceCreateInfo(self.grip, path, xr.Posef())
            )
        xr.attach_session_action_sets(
            self.session, xr.SessionActionSetsAttachInfo(None, [self.action_set])
        )

    def _create_trackers(self) -> None:
        """Face and body trackers where the runtime offers them (optional; errors only log)."""
        try:
            if "XR_FB_face_tracking2" in self.extensions:
                self._face = xr.create_face_tracker2_fb(
                    self.session, xr.FaceTrackerCreateInfo2FB(xr.FaceExpressionSet2FB.DEFAULT)
                )
            if "XR_FB_body_tracking" in self.extensions:
                self._body = xr.create_body_tracker_fb(
                    self.session, xr.BodyTrackerCreateInfoFB(xr.BodyJointSetFB.DEFAULT)
                )
        except xr.XrException as err:
            log.warning("face or body tracking unavailable: %s", err)

    # ---------------------------------------------------------------- events
    def poll(self) -> HeadsetStatus:
        """Handle every pending event; begins and ends the session as the states ask."""
        st = self.status
        while self.instance is not None:
            try:
                event = xr.poll_event(self.instance)
            except xr.EventUnavailable:
                break
            kind = xr.StructureType(event.type)
            if kind == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
                st.lost = st.exit = True
            elif kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                changed = ctypes.cast(
                    ctypes.byref(event), ctypes.POINTER(xr.EventDataSessionStateChanged)
                ).contents
                self._on_state(xr.SessionState(changed.state))
        return st

    def _on_state(self, state: xr.SessionState) -> None:
        st = self.status
        st.state = state
        st.history.append(state)
        log.info("session state %s", state.name)
        if state == xr.SessionState.READY:
            xr.begin_session(
                self.session, xr.SessionBeginInfo(xr.ViewConfigurationType.PRIMARY_STEREO)
            )
            st.running = True
        elif state == xr.SessionState.STOPPING:
            xr.end_session(self.session)
            st.running = False
        elif state == xr.SessionState.EXITING:
            st.exit = True
        elif state == xr.SessionState.LOSS_PENDING:
            st.lost = st.exit = True
            st.running = False

    def request_exit(self) -> None:
        if self.status.running:
            xr.request_exit_session(self.session)

    @property
    def focused(self) -> bool:
        return bool(self.status.state == xr.SessionState.FOCUSED)

    # ---------------------------------------------------------------- frames
    def wait_frame(self) -> Any:
        """xrWaitFrame + xrBeginFrame; the frame state has predicted_display_time."""
        self.frame_state = xr.wait_frame(self.session)
        xr.begin_frame(self.session)
        return self.frame_state

    def end_frame(self, layers: list[Any] | None = None) -> None:
        xr.end_frame(
            self.session,
            xr.FrameEndInfo(
                display_time=self.frame_state.predicted_display_time,
                environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE,
                layers=layers or [],
            ),
        )

    def render(self, xr_time: int, draw: Any) -> list[Any]:
        """Draw both eyes for ``xr_time``; the layers for ``end_frame`` (none if untracked).

        ``draw(eye, pose, fov, width, height)`` gets the eye pose in the seat frame (like
        ``views()``) and an XrFovf, with the eye's swapchain image bound and its viewport set.
        """
        if self.graphics is None:
            return []

        def lifted(i: int, pose: Any, fov: Any, w: int, h: int) -> None:
            draw(i, tracking.lift(pose, self._lift), fov, w, h)

        return list(self.graphics.render(self.session, self._spaces["world"], xr_time, lifted))

    def to_local_us(self, xr_time: int) -> float:
        """An XrTime on the local monotonic clock (microseconds), as RoomClient's clock."""
        if "XR_KHR_convert_timespec_time" in self.extensions:
            ts = xr.convert_time_to_timespec_time_khr(self.instance, xr_time)
            return float(ts.tv_sec * 1e6 + ts.tv_nsec / 1e3)
        return xr_time / 1e3  # the common case: XrTime is CLOCK_MONOTONIC nanoseconds

    def now_xr_time(self) -> int:
        if "XR_KHR_convert_timespec_time" in self.extensions:
            ns = time.monotonic_ns()
            ts = xr.timespec(ns // 1_000_000_000, ns % 1_000_000_000)
            return int(xr.convert_timespec_time_to_time_khr(self.instance, ts))
        return time.monotonic_ns()

    # ---------------------------------------------------------------- tracking
    def locate(self, name: str, xr_time: int) -> Pose7 | None:
        loc = xr.locate_space(self._spaces[name], self._spaces["world"], xr_time)
        valid = (
            xr.SpaceLocationFlags.POSITION_VALID_BIT | xr.SpaceLocationFlags.ORIENTATION_VALID_BIT
        )
        if (loc.location_flags & valid) != valid:
            return None
        pose = tracking.usable(_pose7(loc.pose))
        return None if pose is None else tracking.lift(pose, self._lift)

    def views(self, xr_time: int) -> list[tuple[Pose7, Any]]:
        """Eye poses (seat frame) and fields of view for rendering."""
        view_state, views = xr.locate_views(
            self.session,
            xr.ViewLocateInfo(
                view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO,
                display_time=xr_time,
                space=self._spaces["world"],
            ),
        )
        valid = xr.ViewStateFlags.POSITION_VALID_BIT | xr.ViewStateFlags.ORIENTATION_VALID_BIT
        if (view_state.view_state_flags & valid) != valid:
            return []
        return [(tracking.lift(_pose7(v.pose), self._lift), v.fov) for v in views]

    def sample(self, xr_time: int) -> TrackingSample:
        """Head, hands, gaze and the raise button at ``xr_time`` (a predicted display time)."""
        s = TrackingSample(head=self.locate("view", xr_time))
        if not self.focused:
            return s  # input goes only to the focused session
        xr.sync_actions(
            self.session, xr.ActionsSyncInfo(None, [xr.ActiveActionSet(self.action_set)])
        )
        s.left = self.locate("left", xr_time)
        s.right = self.locate("right", xr_time)
        pressed = xr.get_action_state_boolean(
            self.session, xr.ActionStateGetInfo(self.raise_button, xr.NULL_PATH)
        )
        s.raise_pressed = bool(pressed.is_active and pressed.current_state)
        select = xr.get_action_state_boolean(
            self.session, xr.ActionStateGetInfo(self.select_button, xr.NULL_PATH)
        )
        s.select_pressed = bool(select.is_active and select.current_state)
        if self.gaze is not None:
            s.gaze = self.locate("gaze", xr_time)
            if s.gaze is not None and s.head is not None:
                weights = tracking.gaze_expressions(s.head, s.gaze)
                s.expressions = tracking.map_weights({k: (k,) for k in weights}, weights)
        self._sample_face(s, xr_time)
        self._sample_body(s, xr_time)
        return s

    def _sample_face(self, s: TrackingSample, xr_time: int) -> None:
        if self._face is None:
            return
        w = xr.get_face_expression_weights2_fb(self._face, xr.FaceExpressionInfo2FB(time=xr_time))
        if w.is_valid:
            names = [e.name for e in xr.FaceExpression2FB]
            s.expressions = np.maximum(
                s.expressions,
                tracking.map_weights(tracking.FB_FACE, tracking.named(names, list(w.weights))),
            )

    def _sample_body(self, s: TrackingSample, xr_time: int) -> None:
        if self._body is None or None not in (s.head, s.left, s.right):
            return
        joints = xr.locate_body_joints_fb(
            self._body, xr.BodyJointsLocateInfoFB(self._spaces["world"], xr_time)
        )
        if joints.is_active:
            poses = {
                i: tracking.lift(_pose7(j.pose), self._lift)
                for i, j in enumerate(joints.joint_locations)
                if i
                in (
                    tracking.FB_BODY_HEAD,
                    tracking.FB_BODY_LEFT_WRIST,
                    tracking.FB_BODY_RIGHT_WRIST,
                )
            }
            tracking.body_fallback(s, poses)
