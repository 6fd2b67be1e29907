/* The test runtime's control block: a file the test maps with Python's mmap and the runtime
 * maps with mmap(2) (path in TOWNHALL_XR_CONTROL). The test writes the "in" half (what the
 * headset should do), the runtime writes the "out" half (what the app did). Plain fields, no
 * locks: each field is a naturally aligned 4-byte value, written whole.
 *
 * Keep in step with tests/xr_runtime/__init__.py (the struct formats there).
 *
 * The graphics part (after last_display_time) is what the "headset displayed": with
 * XR_KHR_opengl_enable, xrEndFrame reads back each eye of the submitted projection layer
 * from its swapchain texture, point-sampled down to at most TH_EYE_MAX_W x TH_EYE_MAX_H,
 * top row first, plus the layer views' pose and fov. eye_seq is a sequence lock: odd while
 * the runtime writes, so a reader copies, checks it is unchanged and even, or retries.
 */
#ifndef TOWNHALL_XR_CONTROL_H
#define TOWNHALL_XR_CONTROL_H

#include <stdint.h>

#define TH_BUTTON_LEFT_SELECT 1u   /* /user/hand/left/input/select/click, .../x/click */
#define TH_BUTTON_RIGHT_SELECT 2u  /* /user/hand/right/input/select/click, .../trigger */
#define TH_BUTTON_RIGHT_A 4u       /* /user/hand/right/input/a/click */
#define TH_BUTTON_MENU 8u          /* /user/hand/left/input/menu/click */

#define TH_EYE_MAX_W 640u
#define TH_EYE_MAX_H 480u

typedef struct th_pose {
    float px, py, pz;     /* metres, in STAGE space */
    float qx, qy, qz, qw; /* unit quaternion */
} th_pose;

typedef struct th_control {
    /* in: written by the test */
    uint32_t magic;          /* 0x54485852 'THXR' */
    int32_t target_state;    /* highest XrSessionState the runtime lets the session reach */
    uint32_t request_exit;   /* nonzero: the runtime asks the app to stop (STOPPING, EXITING) */
    uint32_t loss_pending;   /* nonzero: the runtime reports LOSS_PENDING */
    uint32_t buttons;        /* TH_BUTTON_* bits held down */
    uint32_t tracked;        /* bit 0 head, 1 left hand, 2 right hand, 3 eye gaze */
    th_pose head;
    th_pose left;
    th_pose right;
    th_pose gaze;
    /* out: written by the runtime */
    int32_t state;             /* the session state last reported */
    uint32_t frames;           /* xrEndFrame calls */
    uint32_t syncs;            /* xrSyncActions calls */
    uint32_t sessions;         /* sessions created so far */
    uint32_t session_running;  /* between xrBeginSession and xrEndSession */
    uint32_t instance_alive;   /* between xrCreateInstance and xrDestroyInstance */
    uint32_t locates;          /* xrLocateSpace calls */
    uint32_t headless;         /* the session was created with XR_MND_headless */
    int64_t last_display_time; /* predictedDisplayTime of the last xrWaitFrame */
    /* graphics, in: written by the test */
    uint32_t no_gl;            /* nonzero: do not offer XR_KHR_opengl_enable */
    /* graphics, out: written by the runtime */
    uint32_t gl_session;       /* the session was created with an OpenGL Xlib binding */
    uint32_t swapchains;       /* swapchains alive now */
    uint32_t swapchain_format; /* GL internal format of the last swapchain created */
    uint32_t layer_frames;     /* xrEndFrame calls that submitted a projection layer */
    int32_t layer_error;       /* the last XrResult a submitted layer failed with (0: none) */
    uint32_t eye_seq;          /* sequence lock over everything below */
    uint32_t eye_frame;        /* `frames` when the eyes below were read back */
    uint32_t eye_width;        /* size of each eye copy below */
    uint32_t eye_height;
    uint32_t image_width;      /* size of the submitted image rect (before downscaling) */
    uint32_t image_height;
    th_pose layer_pose[2];     /* XrCompositionLayerProjectionView.pose, in the layer's space */
    float layer_fov[2][4];     /* angleLeft, angleRight, angleUp, angleDown (radians) */
    uint8_t eye[2][TH_EYE_MAX_H][TH_EYE_MAX_W][4]; /* RGBA, top row first */
} th_control;

#endif
