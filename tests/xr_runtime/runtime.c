/* An OpenXR runtime for tests: no display, no devices, driven by a control file.
 *
 * The Khronos loader (the one pyopenxr ships) finds it through XR_RUNTIME_JSON, negotiates
 * with xrNegotiateLoaderRuntimeInterface and from then on resolves every call through
 * xrGetInstanceProcAddr below. It implements what the Townhall plugin calls: the instance,
 * system and session lifecycle (XR_MND_headless), session state events, reference and action
 * spaces, views, actions (pose and boolean) and the frame loop. Poses, buttons and the
 * session state the test wants come from the control block (control.h); what the app did is
 * written back there.
 *
 * With XR_KHR_opengl_enable (offered when libGL.so.1 loads and the test does not set no_gl)
 * the session takes an XrGraphicsBindingOpenGLXlibKHR. The runtime lives in the app's
 * process and thread, so it uses the app's GL context directly (it must be current, as the
 * binding says): xrCreateSwapchain makes GL textures in it, and xrEndFrame reads back each
 * eye of the submitted projection layer (glGetTexImage) into the control block: what the
 * headset would have displayed. GL is loaded with dlopen, so no GL headers are needed.
 *
 * One instance and one session at a time; handles are small integers. Not thread-safe, like
 * the apps it serves.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define XR_USE_TIMESPEC 1
#include <openxr/openxr.h>
#include <openxr/openxr_platform.h>

#include "control.h"

#define EXPORT __attribute__((visibility("default")))
#define FRAME_NS 11111111LL /* 90 Hz */
#define MAX_PATHS 256
#define MAX_ACTIONS 64
#define MAX_SPACES 64
#define MAX_BINDINGS 16
#define MAX_EVENTS 16

/* ------------------------------------------------------------------ loader interface */
/* From the loader's loader_interfaces.h, which Debian's libopenxr-dev does not ship. */
typedef enum {
    XR_LOADER_INTERFACE_STRUCT_UNINTIALIZED = 0,
    XR_LOADER_INTERFACE_STRUCT_LOADER_INFO,
    XR_LOADER_INTERFACE_STRUCT_API_LAYER_REQUEST,
    XR_LOADER_INTERFACE_STRUCT_RUNTIME_REQUEST,
} XrLoaderInterfaceStructs;

typedef struct {
    XrLoaderInterfaceStructs structType;
    uint32_t structVersion;
    size_t structSize;
    uint32_t minInterfaceVersion;
    uint32_t maxInterfaceVersion;
    XrVersion minApiVersion;
    XrVersion maxApiVersion;
} XrNegotiateLoaderInfo;

typedef struct {
    XrLoaderInterfaceStructs structType;
    uint32_t structVersion;
    size_t structSize;
    uint32_t runtimeInterfaceVersion;
    XrVersion runtimeApiVersion;
    PFN_xrGetInstanceProcAddr getInstanceProcAddr;
} XrNegotiateRuntimeRequest;

/* ------------------------------------------------------------------ state */

typedef struct {
    int used;
    int is_action;
    XrReferenceSpaceType ref;
    int action;        /* index into actions when is_action */
    XrPath subaction;  /* XR_NULL_PATH: any */
    XrPosef offset;    /* pose in the reference/action space */
} space_t;

typedef struct {
    int used;
    XrActionType type;
    char name[XR_MAX_ACTION_NAME_SIZE];
    XrPath bindings[MAX_BINDINGS];
    int n_bindings;
} action_t;

static th_control fallback;
static th_control *ctl = &fallback;
static char paths[MAX_PATHS][XR_MAX_PATH_LENGTH];
static int n_paths;
static action_t actions[MAX_ACTIONS];
static space_t spaces[MAX_SPACES];
static XrEventDataBuffer events[MAX_EVENTS];
static int n_events;
static int instance_alive, session_alive, session_running, headless, eye_gaze_enabled;
static int frames_ended, attached, exit_requested, loss_reported;
static XrSessionState state = XR_SESSION_STATE_UNKNOWN;
static XrTime next_frame;
static int gl_enabled, gl_requirements_asked, gl_session;

/* The OpenGL part (below the spaces, which it uses). */
static int gl_offered(void);
static XrResult bind_gl(const XrSessionCreateInfo *info);
static void free_swapchains(void);
static int live_swapchains(void);
static XrResult show_projection(const XrCompositionLayerProjection *layer);

static XrTime now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (XrTime)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void map_control(void) {
    /* The loader may keep this library loaded across tests in one process, each test with
       its own control file: map whichever file the environment names now. */
    static char mapped_path[4096];
    const char *path = getenv("TOWNHALL_XR_CONTROL");
    if (!path || (ctl != &fallback && strcmp(path, mapped_path) == 0)) return;
    int fd = open(path, O_RDWR);
    if (fd < 0) return;
    void *p = mmap(NULL, sizeof(th_control), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return;
    if (ctl != &fallback) munmap(ctl, sizeof(th_control));
    ctl = (th_control *)p;
    snprintf(mapped_path, sizeof mapped_path, "%s", path);
}

static void defaults(void) {
    if (ctl != &fallback) return;
    fallback.target_state = XR_SESSION_STATE_FOCUSED;
    fallback.tracked = 0xF;
    fallback.head = (th_pose){0, 1.2f, 0, 0, 0, 0, 1};
    fallback.left = (th_pose){-0.2f, 0.7f, -0.3f, 0, 0, 0, 1};
    fallback.right = (th_pose){0.2f, 0.7f, -0.3f, 0, 0, 0, 1};
    fallback.gaze = (th_pose){0, 1.2f, 0, 0, 0, 0, 1};
}

/* ------------------------------------------------------------------ pose math */

static XrQuaternionf qmul(XrQuaternionf a, XrQuaternionf b) {
    XrQuaternionf r = {
        a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
        a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
        a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
        a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
    };
    return r;
}

static XrVector3f qrot(XrQuaternionf q, XrVector3f v) {
    XrQuaternionf p = {v.x, v.y, v.z, 0}, c = {-q.x, -q.y, -q.z, q.w};
    XrQuaternionf r = qmul(qmul(q, p), c);
    XrVector3f out = {r.x, r.y, r.z};
    return out;
}

static XrPosef compose(XrPosef a, XrPosef b) { /* a * b: b expressed in a's frame */
    XrPosef r;
    XrVector3f t = qrot(a.orientation, b.position);
    r.orientation = qmul(a.orientation, b.orientation);
    r.position = (XrVector3f){a.position.x + t.x, a.position.y + t.y, a.position.z + t.z};
    return r;
}

static XrPosef inverse(XrPosef a) {
    XrPosef r;
    r.orientation = (XrQuaternionf){-a.orientation.x, -a.orientation.y, -a.orientation.z,
                                    a.orientation.w};
    XrVector3f t = qrot(r.orientation, a.position);
    r.position = (XrVector3f){-t.x, -t.y, -t.z};
    return r;
}

static XrPosef from_th(const th_pose *p) {
    XrPosef r = {{p->qx, p->qy, p->qz, p->qw}, {p->px, p->py, p->pz}};
    return r;
}

static const XrPosef IDENTITY = {{0, 0, 0, 1}, {0, 0, 0}};

/* ------------------------------------------------------------------ paths and bindings */

static const char *path_str(XrPath p) {
    return (p >= 1 && p <= (XrPath)n_paths) ? paths[p - 1] : "";
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Which device a binding path reads: 0 head, 1 left, 2 right, 3 gaze, -1 none. */
static int device_of(const char *path) {
    if (starts_with(path, "/user/hand/left/")) return 1;
    if (starts_with(path, "/user/hand/right/")) return 2;
    if (starts_with(path, "/user/eyes_ext/")) return 3;
    if (starts_with(path, "/user/head/")) return 0;
    return -1;
}

static int binding_pressed(const char *path) {
    uint32_t b = ctl->buttons;
    int dev = device_of(path);
    if (dev == 1 && (ends_with(path, "/select/click") || ends_with(path, "/trigger/value") ||
                     ends_with(path, "/x/click")))
        return (b & TH_BUTTON_LEFT_SELECT) != 0;
    if (dev == 1 && ends_with(path, "/menu/click")) return (b & TH_BUTTON_MENU) != 0;
    if (dev == 2 && (ends_with(path, "/select/click") || ends_with(path, "/trigger/value")))
        return (b & TH_BUTTON_RIGHT_SELECT) != 0;
    if (dev == 2 && ends_with(path, "/a/click")) return (b & TH_BUTTON_RIGHT_A) != 0;
    return 0;
}

static int device_tracked(int dev) { return dev >= 0 && (ctl->tracked >> dev) & 1u; }

static XrPosef device_pose(int dev) {
    switch (dev) {
        case 1: return from_th(&ctl->left);
        case 2: return from_th(&ctl->right);
        case 3: return from_th(&ctl->gaze);
        default: return from_th(&ctl->head);
    }
}

/* The device an action space follows: the first binding matching its subaction path. */
static int action_device(int a, XrPath subaction) {
    const char *sub = path_str(subaction);
    for (int i = 0; i < actions[a].n_bindings; i++) {
        const char *b = path_str(actions[a].bindings[i]);
        if (subaction == XR_NULL_PATH || starts_with(b, sub)) return device_of(b);
    }
    return -1;
}

/* ------------------------------------------------------------------ events and states */

static void push_event(const void *ev, size_t size) {
    if (n_events >= MAX_EVENTS) return;
    memset(&events[n_events], 0, sizeof(XrEventDataBuffer));
    memcpy(&events[n_events], ev, size);
    n_events++;
}

static void set_state(XrSessionState s) {
    state = s;
    ctl->state = s;
    XrEventDataSessionStateChanged ev;
    memset(&ev, 0, sizeof ev);
    ev.type = XR_TYPE_EVENT_DATA_SESSION_STATE_CHANGED;
    ev.session = (XrSession)1;
    ev.state = s;
    ev.time = now_ns();
    push_event(&ev, sizeof ev);
}

/* Move one step toward what the test asks for: a runtime changes state one event at a time. */
static void advance(void) {
    if (!session_alive || state == XR_SESSION_STATE_LOSS_PENDING ||
        state == XR_SESSION_STATE_EXITING)
        return;
    if (ctl->loss_pending && !loss_reported) {
        loss_reported = 1;
        set_state(XR_SESSION_STATE_LOSS_PENDING);
        return;
    }
    if (ctl->request_exit && !exit_requested && session_running) exit_requested = 1;
    if (exit_requested) {
        if (state == XR_SESSION_STATE_FOCUSED) set_state(XR_SESSION_STATE_VISIBLE);
        else if (state == XR_SESSION_STATE_VISIBLE) set_state(XR_SESSION_STATE_SYNCHRONIZED);
        else if (state == XR_SESSION_STATE_SYNCHRONIZED || state == XR_SESSION_STATE_READY)
            set_state(XR_SESSION_STATE_STOPPING);
        return;
    }
    if (!session_running || !frames_ended) return;
    int target = ctl->target_state, now = (int)state;
    if (state == XR_SESSION_STATE_READY) set_state(XR_SESSION_STATE_SYNCHRONIZED);
    else if (now < target && now >= XR_SESSION_STATE_SYNCHRONIZED && now < XR_SESSION_STATE_FOCUSED)
        set_state((XrSessionState)(now + 1));
    else if (now > target && now > XR_SESSION_STATE_SYNCHRONIZED &&
             target >= XR_SESSION_STATE_SYNCHRONIZED)
        set_state((XrSessionState)(now - 1));
}

/* ------------------------------------------------------------------ instance */

static XrResult XRAPI_CALL enum_extensions(const char *layer, uint32_t cap, uint32_t *count,
                                           XrExtensionProperties *props) {
    static const char *names[] = {XR_MND_HEADLESS_EXTENSION_NAME,
                                  XR_KHR_CONVERT_TIMESPEC_TIME_EXTENSION_NAME,
                                  XR_EXT_EYE_GAZE_INTERACTION_EXTENSION_NAME,
                                  "XR_KHR_opengl_enable"};
    (void)layer;
    map_control();
    defaults();
    const uint32_t n = sizeof names / sizeof names[0] - (gl_offered() ? 0 : 1);
    *count = n;
    if (cap == 0) return XR_SUCCESS;
    if (cap < n) return XR_ERROR_SIZE_INSUFFICIENT;
    for (uint32_t i = 0; i < n; i++) {
        strncpy(props[i].extensionName, names[i], XR_MAX_EXTENSION_NAME_SIZE - 1);
        props[i].extensionVersion = 1;
    }
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL enum_layers(uint32_t cap, uint32_t *count, XrApiLayerProperties *p) {
    (void)cap;
    (void)p;
    *count = 0;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL create_instance(const XrInstanceCreateInfo *info, XrInstance *out) {
    if (instance_alive) return XR_ERROR_LIMIT_REACHED;
    map_control();
    defaults();
    headless = eye_gaze_enabled = gl_enabled = 0;
    for (uint32_t i = 0; i < info->enabledExtensionCount; i++) {
        const char *e = info->enabledExtensionNames[i];
        if (strcmp(e, XR_MND_HEADLESS_EXTENSION_NAME) == 0) headless = 1;
        else if (strcmp(e, "XR_KHR_opengl_enable") == 0 && gl_offered()) gl_enabled = 1;
        else if (strcmp(e, XR_EXT_EYE_GAZE_INTERACTION_EXTENSION_NAME) == 0) eye_gaze_enabled = 1;
        else if (strcmp(e, XR_KHR_CONVERT_TIMESPEC_TIME_EXTENSION_NAME) != 0)
            return XR_ERROR_EXTENSION_NOT_PRESENT;
    }
    gl_requirements_asked = 0;
    instance_alive = 1;
    ctl->instance_alive = 1;
    n_paths = 0;
    n_events = 0;
    memset(actions, 0, sizeof actions);
    memset(spaces, 0, sizeof spaces);
    *out = (XrInstance)1;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL destroy_instance(XrInstance i) {
    (void)i;
    instance_alive = session_alive = session_running = 0;
    ctl->instance_alive = 0;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL get_instance_properties(XrInstance i, XrInstanceProperties *p) {
    (void)i;
    p->runtimeVersion = XR_MAKE_VERSION(0, 1, 0);
    strncpy(p->runtimeName, "Townhall test runtime", XR_MAX_RUNTIME_NAME_SIZE - 1);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL result_to_string(XrInstance i, XrResult r, char *buf) {
    (void)i;
    snprintf(buf, XR_MAX_RESULT_STRING_SIZE, "XR_RESULT_%d", (int)r);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL type_to_string(XrInstance i, XrStructureType t, char *buf) {
    (void)i;
    snprintf(buf, XR_MAX_STRUCTURE_NAME_SIZE, "XR_TYPE_%d", (int)t);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL poll_event(XrInstance i, XrEventDataBuffer *out) {
    (void)i;
    if (n_events == 0) advance();
    if (n_events == 0) return XR_EVENT_UNAVAILABLE;
    memcpy(out, &events[0], sizeof(XrEventDataBuffer));
    memmove(&events[0], &events[1], sizeof(XrEventDataBuffer) * (size_t)(n_events - 1));
    n_events--;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL string_to_path(XrInstance i, const char *s, XrPath *out) {
    (void)i;
    for (int k = 0; k < n_paths; k++)
        if (strcmp(paths[k], s) == 0) {
            *out = (XrPath)(k + 1);
            return XR_SUCCESS;
        }
    if (s[0] != '/' || n_paths >= MAX_PATHS) return XR_ERROR_PATH_FORMAT_INVALID;
    strncpy(paths[n_paths], s, XR_MAX_PATH_LENGTH - 1);
    *out = (XrPath)(++n_paths);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL path_to_string(XrInstance i, XrPath p, uint32_t cap, uint32_t *count,
                                          char *buf) {
    (void)i;
    if (p < 1 || p > (XrPath)n_paths) return XR_ERROR_PATH_INVALID;
    const char *s = paths[p - 1];
    *count = (uint32_t)strlen(s) + 1;
    if (cap == 0) return XR_SUCCESS;
    if (cap < *count) return XR_ERROR_SIZE_INSUFFICIENT;
    memcpy(buf, s, *count);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL timespec_to_time(XrInstance i, const struct timespec *ts, XrTime *t) {
    (void)i;
    *t = (XrTime)ts->tv_sec * 1000000000LL + ts->tv_nsec;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL time_to_timespec(XrInstance i, XrTime t, struct timespec *ts) {
    (void)i;
    ts->tv_sec = t / 1000000000LL;
    ts->tv_nsec = t % 1000000000LL;
    return XR_SUCCESS;
}

/* ------------------------------------------------------------------ system */

static XrResult XRAPI_CALL get_system(XrInstance i, const XrSystemGetInfo *info, XrSystemId *id) {
    (void)i;
    if (info->formFactor != XR_FORM_FACTOR_HEAD_MOUNTED_DISPLAY)
        return XR_ERROR_FORM_FACTOR_UNSUPPORTED;
    *id = 1;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL get_system_properties(XrInstance i, XrSystemId id,
                                                 XrSystemProperties *p) {
    (void)i;
    p->systemId = id;
    p->vendorId = 0x7448;
    strncpy(p->systemName, "Townhall headless HMD", XR_MAX_SYSTEM_NAME_SIZE - 1);
    p->graphicsProperties.maxLayerCount = 16;
    p->graphicsProperties.maxSwapchainImageWidth = 4096;
    p->graphicsProperties.maxSwapchainImageHeight = 4096;
    p->trackingProperties.orientationTracking = XR_TRUE;
    p->trackingProperties.positionTracking = XR_TRUE;
    for (XrBaseOutStructure *n = (XrBaseOutStructure *)p->next; n; n = n->next)
        if (n->type == XR_TYPE_SYSTEM_EYE_GAZE_INTERACTION_PROPERTIES_EXT)
            ((XrSystemEyeGazeInteractionPropertiesEXT *)n)->supportsEyeGazeInteraction = XR_TRUE;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL enum_view_configs(XrInstance i, XrSystemId s, uint32_t cap,
                                             uint32_t *count, XrViewConfigurationType *out) {
    (void)i;
    (void)s;
    *count = 1;
    if (cap >= 1) out[0] = XR_VIEW_CONFIGURATION_TYPE_PRIMARY_STEREO;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL enum_view_config_views(XrInstance i, XrSystemId s,
                                                  XrViewConfigurationType t, uint32_t cap,
                                                  uint32_t *count,
                                                  XrViewConfigurationView *views) {
    (void)i;
    (void)s;
    if (t != XR_VIEW_CONFIGURATION_TYPE_PRIMARY_STEREO)
        return XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED;
    *count = 2;
    if (cap == 0) return XR_SUCCESS;
    if (cap < 2) return XR_ERROR_SIZE_INSUFFICIENT;
    for (int k = 0; k < 2; k++) {
        views[k].recommendedImageRectWidth = views[k].maxImageRectWidth = 640;
        views[k].recommendedImageRectHeight = views[k].maxImageRectHeight = 480;
        views[k].recommendedSwapchainSampleCount = views[k].maxSwapchainSampleCount = 1;
    }
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL enum_blend_modes(XrInstance i, XrSystemId s, XrViewConfigurationType t,
                                            uint32_t cap, uint32_t *count,
                                            XrEnvironmentBlendMode *out) {
    (void)i;
    (void)s;
    (void)t;
    *count = 1;
    if (cap >= 1) out[0] = XR_ENVIRONMENT_BLEND_MODE_OPAQUE;
    return XR_SUCCESS;
}

/* ------------------------------------------------------------------ session */

static XrResult XRAPI_CALL create_session(XrInstance i, const XrSessionCreateInfo *info,
                                          XrSession *out) {
    (void)i;
    if (session_alive) return XR_ERROR_LIMIT_REACHED;
    if (headless && info->next != NULL) return XR_ERROR_VALIDATION_FAILURE;
    gl_session = 0;
    if (!headless) {
        XrResult r = bind_gl(info);
        if (r != XR_SUCCESS) return r;
        gl_session = 1;
    }
    session_alive = 1;
    ctl->gl_session = (uint32_t)gl_session;
    ctl->swapchains = (uint32_t)live_swapchains(); /* this process's: none left by another */
    ctl->layer_frames = 0;
    ctl->layer_error = 0;
    session_running = frames_ended = attached = exit_requested = loss_reported = 0;
    n_events = 0;
    ctl->sessions++;
    ctl->headless = (uint32_t)headless;
    ctl->frames = ctl->syncs = 0;
    next_frame = 0;
    set_state(XR_SESSION_STATE_IDLE);
    set_state(XR_SESSION_STATE_READY);
    *out = (XrSession)1;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL destroy_session(XrSession s) {
    (void)s;
    free_swapchains();
    session_alive = session_running = 0;
    ctl->session_running = 0;
    n_events = 0;
    memset(spaces, 0, sizeof spaces);
    state = XR_SESSION_STATE_UNKNOWN;
    ctl->state = 0;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL begin_session(XrSession s, const XrSessionBeginInfo *info) {
    (void)s;
    if (session_running) return XR_ERROR_SESSION_RUNNING;
    if (state != XR_SESSION_STATE_READY) return XR_ERROR_SESSION_NOT_READY;
    if (info->primaryViewConfigurationType != XR_VIEW_CONFIGURATION_TYPE_PRIMARY_STEREO)
        return XR_ERROR_VIEW_CONFIGURATION_TYPE_UNSUPPORTED;
    session_running = 1;
    ctl->session_running = 1;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL end_session(XrSession s) {
    (void)s;
    if (!session_running) return XR_ERROR_SESSION_NOT_RUNNING;
    if (state != XR_SESSION_STATE_STOPPING) return XR_ERROR_SESSION_NOT_STOPPING;
    session_running = 0;
    ctl->session_running = 0;
    set_state(XR_SESSION_STATE_IDLE);
    if (exit_requested) set_state(XR_SESSION_STATE_EXITING);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL request_exit(XrSession s) {
    (void)s;
    if (!session_running) return XR_ERROR_SESSION_NOT_RUNNING;
    exit_requested = 1;
    return XR_SUCCESS;
}

/* ------------------------------------------------------------------ frames */

static XrResult XRAPI_CALL wait_frame(XrSession s, const XrFrameWaitInfo *w, XrFrameState *f) {
    (void)s;
    (void)w;
    if (!session_running) return XR_ERROR_SESSION_NOT_RUNNING;
    XrTime now = now_ns();
    if (next_frame == 0 || next_frame < now - FRAME_NS) next_frame = now;
    if (next_frame > now) {
        struct timespec ts = {(time_t)((next_frame - now) / 1000000000LL),
                              (long)((next_frame - now) % 1000000000LL)};
        nanosleep(&ts, NULL);
    }
    f->predictedDisplayPeriod = FRAME_NS;
    f->predictedDisplayTime = next_frame + 2 * FRAME_NS;
    f->shouldRender = state == XR_SESSION_STATE_VISIBLE || state == XR_SESSION_STATE_FOCUSED;
    ctl->last_display_time = f->predictedDisplayTime;
    next_frame += FRAME_NS;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL begin_frame(XrSession s, const XrFrameBeginInfo *b) {
    (void)s;
    (void)b;
    return session_running ? XR_SUCCESS : XR_ERROR_SESSION_NOT_RUNNING;
}

static XrResult XRAPI_CALL end_frame(XrSession s, const XrFrameEndInfo *e) {
    (void)s;
    if (!session_running) return XR_ERROR_SESSION_NOT_RUNNING;
    if (e->displayTime <= 0) return XR_ERROR_TIME_INVALID;
    if (e->environmentBlendMode != XR_ENVIRONMENT_BLEND_MODE_OPAQUE)
        return XR_ERROR_ENVIRONMENT_BLEND_MODE_UNSUPPORTED;
    frames_ended++;
    ctl->frames++;
    int projected = 0;
    for (uint32_t k = 0; k < e->layerCount; k++) {
        const XrCompositionLayerBaseHeader *l = e->layers[k];
        XrResult r = XR_ERROR_LAYER_INVALID;
        if (!l || !gl_session) r = XR_ERROR_LAYER_INVALID; /* headless: nothing to show */
        else if (l->type == XR_TYPE_COMPOSITION_LAYER_PROJECTION && !projected)
            r = show_projection((const XrCompositionLayerProjection *)l);
        if (r != XR_SUCCESS) {
            ctl->layer_error = r;
            return r;
        }
        projected = 1;
    }
    if (projected) ctl->layer_frames++;
    return XR_SUCCESS;
}

/* ------------------------------------------------------------------ spaces and views */

static XrResult XRAPI_CALL enum_ref_spaces(XrSession s, uint32_t cap, uint32_t *count,
                                           XrReferenceSpaceType *out) {
    static const XrReferenceSpaceType kinds[] = {XR_REFERENCE_SPACE_TYPE_VIEW,
                                                 XR_REFERENCE_SPACE_TYPE_LOCAL,
                                                 XR_REFERENCE_SPACE_TYPE_STAGE};
    (void)s;
    *count = 3;
    if (cap == 0) return XR_SUCCESS;
    if (cap < 3) return XR_ERROR_SIZE_INSUFFICIENT;
    memcpy(out, kinds, sizeof kinds);
    return XR_SUCCESS;
}

static XrResult new_space(space_t sp, XrSpace *out) {
    for (int k = 0; k < MAX_SPACES; k++)
        if (!spaces[k].used) {
            sp.used = 1;
            spaces[k] = sp;
            *out = (XrSpace)(uintptr_t)(k + 1);
            return XR_SUCCESS;
        }
    return XR_ERROR_LIMIT_REACHED;
}

static space_t *space_of(XrSpace s) {
    uintptr_t k = (uintptr_t)s;
    return (k >= 1 && k <= MAX_SPACES && spaces[k - 1].used) ? &spaces[k - 1] : NULL;
}

static XrResult XRAPI_CALL create_ref_space(XrSession s, const XrReferenceSpaceCreateInfo *info,
                                            XrSpace *out) {
    (void)s;
    XrReferenceSpaceType t = info->referenceSpaceType;
    if (t != XR_REFERENCE_SPACE_TYPE_VIEW && t != XR_REFERENCE_SPACE_TYPE_LOCAL &&
        t != XR_REFERENCE_SPACE_TYPE_STAGE)
        return XR_ERROR_REFERENCE_SPACE_UNSUPPORTED;
    space_t sp = {0};
    sp.ref = t;
    sp.offset = info->poseInReferenceSpace;
    return new_space(sp, out);
}

static XrResult XRAPI_CALL create_action_space(XrSession s, const XrActionSpaceCreateInfo *info,
                                               XrSpace *out) {
    (void)s;
    uintptr_t a = (uintptr_t)info->action;
    if (a < 1 || a > MAX_ACTIONS || !actions[a - 1].used) return XR_ERROR_HANDLE_INVALID;
    if (actions[a - 1].type != XR_ACTION_TYPE_POSE_INPUT) return XR_ERROR_ACTION_TYPE_MISMATCH;
    space_t sp = {0};
    sp.is_action = 1;
    sp.action = (int)a - 1;
    sp.subaction = info->subactionPath;
    sp.offset = info->poseInActionSpace;
    return new_space(sp, out);
}

static XrResult XRAPI_CALL destroy_space(XrSpace s) {
    space_t *sp = space_of(s);
    if (!sp) return XR_ERROR_HANDLE_INVALID;
    sp->used = 0;
    return XR_SUCCESS;
}

/* A space's pose in STAGE (world) and whether it is tracked now. */
static int world_pose(const space_t *sp, XrPosef *out) {
    XrPosef base = IDENTITY;
    int tracked = 1;
    if (sp->is_action) {
        int dev = attached ? action_device(sp->action, sp->subaction) : -1;
        tracked = device_tracked(dev) && state == XR_SESSION_STATE_FOCUSED;
        if (tracked) base = device_pose(dev);
    } else if (sp->ref == XR_REFERENCE_SPACE_TYPE_VIEW) {
        tracked = device_tracked(0);
        base = device_pose(0);
    } else if (sp->ref == XR_REFERENCE_SPACE_TYPE_LOCAL) {
        base.position.y = 1.2f; /* LOCAL's origin: the seated eye height at start */
    }
    *out = compose(base, sp->offset);
    return tracked;
}

static XrResult XRAPI_CALL locate_space(XrSpace space, XrSpace base, XrTime t,
                                        XrSpaceLocation *loc) {
    space_t *a = space_of(space), *b = space_of(base);
    if (!a || !b) return XR_ERROR_HANDLE_INVALID;
    if (t <= 0) return XR_ERROR_TIME_INVALID;
    ctl->locates++;
    XrPosef pa, pb;
    int ta = world_pose(a, &pa), tb = world_pose(b, &pb);
    if (!(ta && tb)) {
        loc->locationFlags = 0;
        loc->pose = IDENTITY;
        return XR_SUCCESS;
    }
    loc->pose = compose(inverse(pb), pa);
    loc->locationFlags = XR_SPACE_LOCATION_ORIENTATION_VALID_BIT |
                         XR_SPACE_LOCATION_POSITION_VALID_BIT |
                         XR_SPACE_LOCATION_ORIENTATION_TRACKED_BIT |
                         XR_SPACE_LOCATION_POSITION_TRACKED_BIT;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL locate_views(XrSession s, const XrViewLocateInfo *info,
                                        XrViewState *vs, uint32_t cap, uint32_t *count,
                                        XrView *views) {
    (void)s;
    space_t *b = space_of(info->space);
    if (!b) return XR_ERROR_HANDLE_INVALID;
    *count = 2;
    if (cap == 0) return XR_SUCCESS;
    if (cap < 2) return XR_ERROR_SIZE_INSUFFICIENT;
    XrPosef head = device_pose(0), pb;
    int tracked = device_tracked(0) && world_pose(b, &pb);
    vs->viewStateFlags = tracked ? (XR_VIEW_STATE_ORIENTATION_VALID_BIT |
                                    XR_VIEW_STATE_POSITION_VALID_BIT |
                                    XR_VIEW_STATE_ORIENTATION_TRACKED_BIT |
                                    XR_VIEW_STATE_POSITION_TRACKED_BIT)
                                 : 0;
    for (int k = 0; k < 2; k++) {
        XrPosef eye = IDENTITY;
        eye.position.x = k == 0 ? -0.032f : 0.032f;
        views[k].pose = tracked ? compose(inverse(pb), compose(head, eye)) : IDENTITY;
        views[k].fov = (XrFovf){-0.785398f, 0.785398f, 0.785398f, -0.785398f};
    }
    return XR_SUCCESS;
}

/* ------------------------------------------------------------------ OpenGL (dlopen) */
/* XR_KHR_opengl_enable's structs, as openxr_platform.h has them with XR_USE_PLATFORM_XLIB
 * (spelt out so that GL/glx.h is not needed). */
typedef struct {
    XrStructureType type;
    const void *next;
    void *xDisplay;
    uint32_t visualid;
    void *glxFBConfig;
    unsigned long glxDrawable;
    void *glxContext;
} th_binding_glx;

typedef struct {
    XrStructureType type;
    void *next;
    uint32_t image;
} th_image_gl;

typedef struct {
    XrStructureType type;
    void *next;
    XrVersion minApiVersionSupported;
    XrVersion maxApiVersionSupported;
} th_requirements_gl;

#define GL_ENABLE_NAME "XR_KHR_opengl_enable"
#define TH_GL_TEXTURE_2D 0x0DE1
#define TH_GL_TEXTURE_BINDING_2D 0x8069
#define TH_GL_TEXTURE_MIN_FILTER 0x2801
#define TH_GL_TEXTURE_MAG_FILTER 0x2800
#define TH_GL_LINEAR 0x2601
#define TH_GL_RGBA 0x1908
#define TH_GL_RGBA8 0x8058
#define TH_GL_SRGB8_ALPHA8 0x8C43
#define TH_GL_UNSIGNED_BYTE 0x1401
#define TH_GL_PACK_ALIGNMENT 0x0D05
#define TH_GL_NO_ERROR 0

static struct {
    int tried, ok;
    void (*GenTextures)(int, unsigned *);
    void (*DeleteTextures)(int, const unsigned *);
    void (*BindTexture)(unsigned, unsigned);
    void (*TexParameteri)(unsigned, unsigned, int);
    void (*TexImage2D)(unsigned, int, int, int, int, int, unsigned, unsigned, const void *);
    void (*GetTexImage)(unsigned, int, unsigned, unsigned, void *);
    void (*GetIntegerv)(unsigned, int *);
    void (*PixelStorei)(unsigned, int);
    unsigned (*GetError)(void);
    void *(*GetCurrentContext)(void);
} gl;

static int load_gl(void) {
    if (gl.tried) return gl.ok;
    gl.tried = 1;
    void *lib = dlopen("libGL.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) return 0;
#define SYM(field, name) \
    if (!(*(void **)&gl.field = dlsym(lib, name))) return 0
    SYM(GenTextures, "glGenTextures");
    SYM(DeleteTextures, "glDeleteTextures");
    SYM(BindTexture, "glBindTexture");
    SYM(TexParameteri, "glTexParameteri");
    SYM(TexImage2D, "glTexImage2D");
    SYM(GetTexImage, "glGetTexImage");
    SYM(GetIntegerv, "glGetIntegerv");
    SYM(PixelStorei, "glPixelStorei");
    SYM(GetError, "glGetError");
    SYM(GetCurrentContext, "glXGetCurrentContext");
#undef SYM
    gl.ok = 1;
    return 1;
}

static int gl_offered(void) { return !ctl->no_gl && load_gl(); }

static void *gl_context; /* the app's, from the session's binding */

static int gl_context_current(void) { return gl_context && gl.GetCurrentContext() == gl_context; }

static XrResult bind_gl(const XrSessionCreateInfo *info) {
    if (!gl_enabled) return XR_ERROR_GRAPHICS_DEVICE_INVALID; /* no graphics API enabled */
    if (!gl_requirements_asked) return XR_ERROR_GRAPHICS_REQUIREMENTS_CALL_MISSING;
    const th_binding_glx *b = NULL;
    for (const XrBaseInStructure *n = info->next; n; n = n->next)
        if (n->type == XR_TYPE_GRAPHICS_BINDING_OPENGL_XLIB_KHR) b = (const th_binding_glx *)n;
    if (!b || !b->xDisplay || !b->glxContext) return XR_ERROR_GRAPHICS_DEVICE_INVALID;
    gl_context = b->glxContext;
    /* In-process and on the app's thread: the binding's context must be the current one. */
    return gl_context_current() ? XR_SUCCESS : XR_ERROR_GRAPHICS_DEVICE_INVALID;
}

#define MAX_SWAPCHAINS 8
#define SWAPCHAIN_IMAGES 3

typedef struct {
    int used;
    uint32_t width, height, format;
    unsigned textures[SWAPCHAIN_IMAGES];
    int next;      /* the image the next acquire gets */
    int acquired;  /* the image acquired and not yet released, or -1 */
    int waited;    /* the acquired image has been waited on */
    int released;  /* the last image released, or -1 (what a layer shows) */
} swapchain_t;

static swapchain_t swapchains[MAX_SWAPCHAINS];

static swapchain_t *swapchain_of(XrSwapchain h) {
    uintptr_t k = (uintptr_t)h;
    return (k >= 1 && k <= MAX_SWAPCHAINS && swapchains[k - 1].used) ? &swapchains[k - 1] : NULL;
}

static int live_swapchains(void) {
    int n = 0;
    for (int k = 0; k < MAX_SWAPCHAINS; k++) n += swapchains[k].used;
    return n;
}

static XrResult XRAPI_CALL gl_requirements(XrInstance i, XrSystemId s, th_requirements_gl *r) {
    (void)i;
    if (!gl_enabled) return XR_ERROR_FUNCTION_UNSUPPORTED;
    if (s != 1) return XR_ERROR_SYSTEM_INVALID;
    if (!r || r->type != XR_TYPE_GRAPHICS_REQUIREMENTS_OPENGL_KHR) return XR_ERROR_VALIDATION_FAILURE;
    r->minApiVersionSupported = XR_MAKE_VERSION(3, 3, 0); /* what the renderer needs */
    r->maxApiVersionSupported = XR_MAKE_VERSION(4, 6, 0);
    gl_requirements_asked = 1;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL enum_formats(XrSession s, uint32_t cap, uint32_t *count, int64_t *out) {
    static const int64_t formats[] = {TH_GL_SRGB8_ALPHA8, TH_GL_RGBA8};
    (void)s;
    if (!session_alive) return XR_ERROR_HANDLE_INVALID;
    *count = gl_session ? 2 : 0;
    if (cap == 0 || !gl_session) return XR_SUCCESS;
    if (cap < 2) return XR_ERROR_SIZE_INSUFFICIENT;
    memcpy(out, formats, sizeof formats);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL create_swapchain(XrSession s, const XrSwapchainCreateInfo *info,
                                            XrSwapchain *out) {
    (void)s;
    if (!session_alive) return XR_ERROR_HANDLE_INVALID;
    if (!gl_session) return XR_ERROR_FEATURE_UNSUPPORTED; /* headless: nothing to show */
    if (info->format != TH_GL_SRGB8_ALPHA8 && info->format != TH_GL_RGBA8)
        return XR_ERROR_SWAPCHAIN_FORMAT_UNSUPPORTED;
    if (info->width == 0 || info->height == 0 || info->width > 4096 || info->height > 4096 ||
        info->arraySize != 1 || info->faceCount != 1 || info->mipCount != 1 ||
        info->sampleCount != 1)
        return XR_ERROR_VALIDATION_FAILURE;
    if (!gl_context_current()) return XR_ERROR_GRAPHICS_DEVICE_INVALID;
    for (int k = 0; k < MAX_SWAPCHAINS; k++) {
        if (swapchains[k].used) continue;
        swapchain_t *sc = &swapchains[k];
        memset(sc, 0, sizeof *sc);
        sc->used = 1;
        sc->width = info->width;
        sc->height = info->height;
        sc->format = (uint32_t)info->format;
        sc->acquired = sc->released = -1;
        int bound = 0;
        gl.GetIntegerv(TH_GL_TEXTURE_BINDING_2D, &bound);
        gl.GenTextures(SWAPCHAIN_IMAGES, sc->textures);
        for (int i = 0; i < SWAPCHAIN_IMAGES; i++) {
            gl.BindTexture(TH_GL_TEXTURE_2D, sc->textures[i]);
            gl.TexParameteri(TH_GL_TEXTURE_2D, TH_GL_TEXTURE_MIN_FILTER, TH_GL_LINEAR);
            gl.TexParameteri(TH_GL_TEXTURE_2D, TH_GL_TEXTURE_MAG_FILTER, TH_GL_LINEAR);
            gl.TexImage2D(TH_GL_TEXTURE_2D, 0, (int)sc->format, (int)sc->width, (int)sc->height,
                          0, TH_GL_RGBA, TH_GL_UNSIGNED_BYTE, NULL);
        }
        gl.BindTexture(TH_GL_TEXTURE_2D, (unsigned)bound);
        if (gl.GetError() != TH_GL_NO_ERROR) {
            gl.DeleteTextures(SWAPCHAIN_IMAGES, sc->textures);
            sc->used = 0;
            return XR_ERROR_RUNTIME_FAILURE;
        }
        ctl->swapchains = (uint32_t)live_swapchains();
        ctl->swapchain_format = sc->format;
        *out = (XrSwapchain)(uintptr_t)(k + 1);
        return XR_SUCCESS;
    }
    return XR_ERROR_LIMIT_REACHED;
}

static void free_swapchain(swapchain_t *sc);

static void free_swapchains(void) {
    for (int k = 0; k < MAX_SWAPCHAINS; k++)
        if (swapchains[k].used) free_swapchain(&swapchains[k]);
}

static void free_swapchain(swapchain_t *sc) {
    /* The app's context is normally current here; if it is gone, so are the textures. */
    if (gl_context_current()) gl.DeleteTextures(SWAPCHAIN_IMAGES, sc->textures);
    sc->used = 0;
    ctl->swapchains = (uint32_t)live_swapchains();
}

static XrResult XRAPI_CALL destroy_swapchain(XrSwapchain h) {
    swapchain_t *sc = swapchain_of(h);
    if (!sc) return XR_ERROR_HANDLE_INVALID;
    free_swapchain(sc);
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL enum_images(XrSwapchain h, uint32_t cap, uint32_t *count,
                                       XrSwapchainImageBaseHeader *images) {
    swapchain_t *sc = swapchain_of(h);
    if (!sc) return XR_ERROR_HANDLE_INVALID;
    *count = SWAPCHAIN_IMAGES;
    if (cap == 0) return XR_SUCCESS;
    if (cap < SWAPCHAIN_IMAGES) return XR_ERROR_SIZE_INSUFFICIENT;
    th_image_gl *out = (th_image_gl *)images;
    for (int i = 0; i < SWAPCHAIN_IMAGES; i++) {
        if (out[i].type != XR_TYPE_SWAPCHAIN_IMAGE_OPENGL_KHR) return XR_ERROR_VALIDATION_FAILURE;
        out[i].image = sc->textures[i];
    }
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL acquire_image(XrSwapchain h, const XrSwapchainImageAcquireInfo *info,
                                         uint32_t *index) {
    (void)info;
    swapchain_t *sc = swapchain_of(h);
    if (!sc) return XR_ERROR_HANDLE_INVALID;
    if (sc->acquired >= 0) return XR_ERROR_CALL_ORDER_INVALID; /* one at a time here */
    sc->acquired = sc->next;
    sc->waited = 0;
    sc->next = (sc->next + 1) % SWAPCHAIN_IMAGES;
    *index = (uint32_t)sc->acquired;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL wait_image(XrSwapchain h, const XrSwapchainImageWaitInfo *info) {
    (void)info;
    swapchain_t *sc = swapchain_of(h);
    if (!sc) return XR_ERROR_HANDLE_INVALID;
    if (sc->acquired < 0 || sc->waited) return XR_ERROR_CALL_ORDER_INVALID;
    sc->waited = 1;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL release_image(XrSwapchain h, const XrSwapchainImageReleaseInfo *info) {
    (void)info;
    swapchain_t *sc = swapchain_of(h);
    if (!sc) return XR_ERROR_HANDLE_INVALID;
    if (sc->acquired < 0 || !sc->waited) return XR_ERROR_CALL_ORDER_INVALID;
    sc->released = sc->acquired;
    sc->acquired = -1;
    return XR_SUCCESS;
}

static th_pose to_th(XrPosef p) {
    th_pose r = {p.position.x, p.position.y, p.position.z,
                 p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w};
    return r;
}

/* Check a submitted projection layer and copy what each eye shows into the control block. */
static XrResult show_projection(const XrCompositionLayerProjection *layer) {
    static uint8_t pixels[4096 * 4096 * 4 / 16]; /* up to 1024x1024 rects read whole */
    if (!space_of(layer->space)) return XR_ERROR_HANDLE_INVALID;
    if (layer->viewCount != 2 || !layer->views) return XR_ERROR_VALIDATION_FAILURE;
    for (uint32_t v = 0; v < 2; v++) {
        const XrCompositionLayerProjectionView *pv = &layer->views[v];
        swapchain_t *sc = swapchain_of(pv->subImage.swapchain);
        if (pv->type != XR_TYPE_COMPOSITION_LAYER_PROJECTION_VIEW) return XR_ERROR_VALIDATION_FAILURE;
        if (!sc) return XR_ERROR_HANDLE_INVALID;
        if (sc->released < 0 || sc->acquired >= 0) return XR_ERROR_LAYER_INVALID;
        const XrRect2Di *r = &pv->subImage.imageRect;
        if (pv->subImage.imageArrayIndex != 0 || r->offset.x < 0 || r->offset.y < 0 ||
            r->extent.width <= 0 || r->extent.height <= 0 ||
            (uint32_t)(r->offset.x + r->extent.width) > sc->width ||
            (uint32_t)(r->offset.y + r->extent.height) > sc->height)
            return XR_ERROR_SWAPCHAIN_RECT_INVALID;
        if ((size_t)sc->width * sc->height * 4 > sizeof pixels) return XR_ERROR_LIMIT_REACHED;
    }
    if (!gl_context_current()) return XR_ERROR_GRAPHICS_DEVICE_INVALID;
    ctl->eye_seq++; /* odd: being written */
    __sync_synchronize();
    for (uint32_t v = 0; v < 2; v++) {
        const XrCompositionLayerProjectionView *pv = &layer->views[v];
        swapchain_t *sc = swapchain_of(pv->subImage.swapchain);
        const XrRect2Di *r = &pv->subImage.imageRect;
        int bound = 0;
        gl.GetIntegerv(TH_GL_TEXTURE_BINDING_2D, &bound);
        gl.BindTexture(TH_GL_TEXTURE_2D, sc->textures[sc->released]);
        gl.PixelStorei(TH_GL_PACK_ALIGNMENT, 4);
        gl.GetTexImage(TH_GL_TEXTURE_2D, 0, TH_GL_RGBA, TH_GL_UNSIGNED_BYTE, pixels);
        gl.BindTexture(TH_GL_TEXTURE_2D, (unsigned)bound);
        uint32_t w = (uint32_t)r->extent.width, h = (uint32_t)r->extent.height;
        uint32_t f = (w + TH_EYE_MAX_W - 1) / TH_EYE_MAX_W, fh = (h + TH_EYE_MAX_H - 1) / TH_EYE_MAX_H;
        if (fh > f) f = fh;
        uint32_t ew = w / f, eh = h / f;
        for (uint32_t y = 0; y < eh; y++) {
            /* GL's rows go bottom up; the copy's go top down. Sample each cell's centre. */
            uint32_t sy = (uint32_t)r->offset.y + h - 1 - (y * f + f / 2);
            for (uint32_t x = 0; x < ew; x++) {
                uint32_t sx = (uint32_t)r->offset.x + x * f + f / 2;
                memcpy(ctl->eye[v][y][x], &pixels[((size_t)sy * sc->width + sx) * 4], 4);
            }
        }
        ctl->eye_width = ew;
        ctl->eye_height = eh;
        ctl->image_width = w;
        ctl->image_height = h;
        ctl->layer_pose[v] = to_th(pv->pose);
        ctl->layer_fov[v][0] = pv->fov.angleLeft;
        ctl->layer_fov[v][1] = pv->fov.angleRight;
        ctl->layer_fov[v][2] = pv->fov.angleUp;
        ctl->layer_fov[v][3] = pv->fov.angleDown;
    }
    ctl->eye_frame = ctl->frames;
    __sync_synchronize();
    ctl->eye_seq++;
    return gl.GetError() == TH_GL_NO_ERROR ? XR_SUCCESS : XR_ERROR_RUNTIME_FAILURE;
}

/* ------------------------------------------------------------------ actions */

static XrResult XRAPI_CALL create_action_set(XrInstance i, const XrActionSetCreateInfo *info,
                                             XrActionSet *out) {
    (void)i;
    (void)info;
    *out = (XrActionSet)1;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL destroy_handle(void *h) {
    (void)h;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL create_action(XrActionSet set, const XrActionCreateInfo *info,
                                         XrAction *out) {
    (void)set;
    for (int k = 0; k < MAX_ACTIONS; k++)
        if (!actions[k].used) {
            memset(&actions[k], 0, sizeof(action_t));
            actions[k].used = 1;
            actions[k].type = info->actionType;
            strncpy(actions[k].name, info->actionName, XR_MAX_ACTION_NAME_SIZE - 1);
            *out = (XrAction)(uintptr_t)(k + 1);
            return XR_SUCCESS;
        }
    return XR_ERROR_LIMIT_REACHED;
}

/* Bindings are kept from every suggested profile: this "controller" answers to all of them. */
static XrResult XRAPI_CALL suggest_bindings(XrInstance i,
                                            const XrInteractionProfileSuggestedBinding *s) {
    (void)i;
    for (uint32_t k = 0; k < s->countSuggestedBindings; k++) {
        uintptr_t a = (uintptr_t)s->suggestedBindings[k].action;
        if (a < 1 || a > MAX_ACTIONS || !actions[a - 1].used) return XR_ERROR_HANDLE_INVALID;
        action_t *act = &actions[a - 1];
        if (act->n_bindings < MAX_BINDINGS)
            act->bindings[act->n_bindings++] = s->suggestedBindings[k].binding;
    }
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL attach_sets(XrSession s, const XrSessionActionSetsAttachInfo *info) {
    (void)s;
    (void)info;
    if (attached) return XR_ERROR_ACTIONSETS_ALREADY_ATTACHED;
    attached = 1;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL sync_actions(XrSession s, const XrActionsSyncInfo *info) {
    (void)s;
    (void)info;
    if (!attached) return XR_ERROR_ACTIONSET_NOT_ATTACHED;
    ctl->syncs++;
    return state == XR_SESSION_STATE_FOCUSED ? XR_SUCCESS : XR_SESSION_NOT_FOCUSED;
}

static action_t *action_of(const XrActionStateGetInfo *g) {
    uintptr_t a = (uintptr_t)g->action;
    return (a >= 1 && a <= MAX_ACTIONS && actions[a - 1].used) ? &actions[a - 1] : NULL;
}

static XrResult XRAPI_CALL state_boolean(XrSession s, const XrActionStateGetInfo *g,
                                         XrActionStateBoolean *out) {
    (void)s;
    action_t *a = action_of(g);
    if (!a) return XR_ERROR_HANDLE_INVALID;
    if (a->type != XR_ACTION_TYPE_BOOLEAN_INPUT) return XR_ERROR_ACTION_TYPE_MISMATCH;
    int on = 0;
    const char *sub = path_str(g->subactionPath);
    for (int k = 0; k < a->n_bindings; k++) {
        const char *b = path_str(a->bindings[k]);
        if (g->subactionPath == XR_NULL_PATH || starts_with(b, sub)) on |= binding_pressed(b);
    }
    int focused = state == XR_SESSION_STATE_FOCUSED;
    out->isActive = focused ? XR_TRUE : XR_FALSE;
    out->currentState = (focused && on) ? XR_TRUE : XR_FALSE;
    out->changedSinceLastSync = XR_FALSE;
    out->lastChangeTime = now_ns();
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL state_pose(XrSession s, const XrActionStateGetInfo *g,
                                      XrActionStatePose *out) {
    (void)s;
    action_t *a = action_of(g);
    if (!a) return XR_ERROR_HANDLE_INVALID;
    if (a->type != XR_ACTION_TYPE_POSE_INPUT) return XR_ERROR_ACTION_TYPE_MISMATCH;
    int dev = action_device((int)(a - actions), g->subactionPath);
    out->isActive = (state == XR_SESSION_STATE_FOCUSED && device_tracked(dev)) ? XR_TRUE : XR_FALSE;
    return XR_SUCCESS;
}

static XrResult XRAPI_CALL get_profile(XrSession s, XrPath user, XrInteractionProfileState *out) {
    (void)s;
    (void)user;
    out->interactionProfile = XR_NULL_PATH;
    return XR_SUCCESS;
}

/* ------------------------------------------------------------------ dispatch */

typedef struct {
    const char *name;
    PFN_xrVoidFunction fn;
} entry_t;

#define E(n, f) {n, (PFN_xrVoidFunction)(f)}
static XrResult XRAPI_CALL get_proc_addr(XrInstance i, const char *name, PFN_xrVoidFunction *fn);

static const entry_t table[] = {
    E("xrGetInstanceProcAddr", get_proc_addr),
    E("xrEnumerateInstanceExtensionProperties", enum_extensions),
    E("xrEnumerateApiLayerProperties", enum_layers),
    E("xrCreateInstance", create_instance),
    E("xrDestroyInstance", destroy_instance),
    E("xrGetInstanceProperties", get_instance_properties),
    E("xrResultToString", result_to_string),
    E("xrStructureTypeToString", type_to_string),
    E("xrPollEvent", poll_event),
    E("xrStringToPath", string_to_path),
    E("xrPathToString", path_to_string),
    E("xrConvertTimespecTimeToTimeKHR", timespec_to_time),
    E("xrConvertTimeToTimespecTimeKHR", time_to_timespec),
    E("xrGetSystem", get_system),
    E("xrGetSystemProperties", get_system_properties),
    E("xrEnumerateViewConfigurations", enum_view_configs),
    E("xrEnumerateViewConfigurationViews", enum_view_config_views),
    E("xrEnumerateEnvironmentBlendModes", enum_blend_modes),
    E("xrCreateSession", create_session),
    E("xrDestroySession", destroy_session),
    E("xrBeginSession", begin_session),
    E("xrEndSession", end_session),
    E("xrRequestExitSession", request_exit),
    E("xrWaitFrame", wait_frame),
    E("xrBeginFrame", begin_frame),
    E("xrEndFrame", end_frame),
    E("xrEnumerateReferenceSpaces", enum_ref_spaces),
    E("xrCreateReferenceSpace", create_ref_space),
    E("xrCreateActionSpace", create_action_space),
    E("xrDestroySpace", destroy_space),
    E("xrLocateSpace", locate_space),
    E("xrLocateViews", locate_views),
    E("xrCreateActionSet", create_action_set),
    E("xrDestroyActionSet", destroy_handle),
    E("xrCreateAction", create_action),
    E("xrDestroyAction", destroy_handle),
    E("xrSuggestInteractionProfileBindings", suggest_bindings),
    E("xrAttachSessionActionSets", attach_sets),
    E("xrSyncActions", sync_actions),
    E("xrGetActionStateBoolean", state_boolean),
    E("xrGetActionStatePose", state_pose),
    E("xrGetCurrentInteractionProfile", get_profile),
    E("xrGetOpenGLGraphicsRequirementsKHR", gl_requirements),
    E("xrEnumerateSwapchainFormats", enum_formats),
    E("xrCreateSwapchain", create_swapchain),
    E("xrDestroySwapchain", destroy_swapchain),
    E("xrEnumerateSwapchainImages", enum_images),
    E("xrAcquireSwapchainImage", acquire_image),
    E("xrWaitSwapchainImage", wait_image),
    E("xrReleaseSwapchainImage", release_image),
};

static XrResult XRAPI_CALL get_proc_addr(XrInstance i, const char *name, PFN_xrVoidFunction *fn) {
    (void)i;
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++)
        if (strcmp(table[k].name, name) == 0) {
            *fn = table[k].fn;
            return XR_SUCCESS;
        }
    *fn = NULL;
    return XR_ERROR_FUNCTION_UNSUPPORTED;
}

EXPORT XrResult xrNegotiateLoaderRuntimeInterface(const XrNegotiateLoaderInfo *info,
                                                  XrNegotiateRuntimeRequest *req) {
    if (!info || !req || info->structType != XR_LOADER_INTERFACE_STRUCT_LOADER_INFO ||
        req->structType != XR_LOADER_INTERFACE_STRUCT_RUNTIME_REQUEST ||
        info->minInterfaceVersion > 1 || info->maxInterfaceVersion < 1)
        return XR_ERROR_INITIALIZATION_FAILED;
    req->runtimeInterfaceVersion = 1;
    req->runtimeApiVersion = XR_MAKE_VERSION(1, 0, 0);
    if (req->runtimeApiVersion < info->minApiVersion) req->runtimeApiVersion = info->minApiVersion;
    req->getInstanceProcAddr = get_proc_addr;
    return XR_SUCCESS;
}
