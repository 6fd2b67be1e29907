/*
 * capload: the capacity benchmark's load generator, thousands of WebSocket clients
 * on one epoll loop.
 *
 * Why C: at 12,000 clients the server writes ~300k messages a second. A Python
 * client costs ~10 us a message, so a Python load generator would need more CPU
 * than the server and the two would fight for the same two cores. Here a
 * message costs well under a microsecond on top of the recv() that carries it.
 *
 * bench/capacity.py compiles this with the system compiler, writes the Join and
 * Pose frames (already masked, built by the Python protocol library) to files,
 * and drives it over stdin, one command a line:
 *   start        reset the window counters
 *   stop         print the window's stats as one JSON line on stdout
 *   stall F      stop reading from every (1/F)-th client (F = 0.1 -> 10%)
 *   quit         exit
 * It prints {"event":"ramped",...} once every client has joined or failed. With
 * --max-pending N, at most N clients are connecting or joining at once (0: no limit).
 *
 * Latency: server frames carry the server's clock (stage packets their media
 * time, crowd frames their server time). --offset-us maps this process's
 * CLOCK_MONOTONIC to the server's clock (measured by capacity.py with Ping/Pong).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define T_WELCOME 64
#define T_ERROR 65
#define T_NEAR 71
#define T_FAR 72
#define T_STAGE 77
#define HIST_BUCKETS 200000 /* 50 us buckets: 10 s, from LAT_MIN_US */
#define HIST_US 50
#define LAT_MIN_US (-2000000) /* stage packets arrive up to the stage lead early */
#define JOIN_TIMEOUT_US 60000000LL

enum { S_CONNECTING, S_UPGRADING, S_JOINING, S_OPEN, S_CLOSED };

typedef struct {
    int fd;
    int state;
    int attendee;
    int stalled;
    uint8_t *buf;
    size_t len, cap;
    int64_t next_pose_us;
    int64_t started_us;
    unsigned pose_i;
} conn_t;

typedef struct {
    uint64_t count;
    uint64_t neg;
    uint32_t hist[HIST_BUCKETS];
    int64_t max_us;
} lat_t;

static conn_t *conns;
static int n_clients, n_attendees, port, pose_hz = 20, ramp_per_s = 500, max_pending;
static int64_t offset_us;
static uint8_t **join_frames;
static size_t *join_lens;
static uint8_t **pose_frames;
static size_t *pose_lens;
static int n_poses;
static int epfd;
static int joined, join_failed, closed_n, open_n, stalled_n;
static int close_codes[5000];
/* window counters */
static uint64_t w_msgs, w_msgs_att, w_msgs_spec, w_bytes_att, w_bytes_spec, w_bytes_crowd_att, w_poses, w_type[128];
static uint64_t w_closed;
static lat_t lat_stage, lat_stage_att, lat_stage_spec, lat_crowd;
static int64_t w_start_us;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static uint8_t *read_frames(const char *path, int *count, size_t **lens) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *all = malloc(size);
    if (fread(all, 1, size, f) != (size_t)size) die("fread");
    fclose(f);
    int n = 0;
    for (long at = 0; at + 2 <= size;) {
        at += 2 + (all[at] | (all[at + 1] << 8));
        n++;
    }
    *count = n;
    *lens = calloc(n, sizeof(size_t));
    return all;
}

static uint8_t **index_frames(uint8_t *all, int n, size_t *lens) {
    uint8_t **out = calloc(n, sizeof(uint8_t *));
    long at = 0;
    for (int i = 0; i < n; i++) {
        lens[i] = all[at] | (all[at + 1] << 8);
        out[i] = all + at + 2;
        at += 2 + lens[i];
    }
    return out;
}

/* Signed: a stage packet that arrives before its media time counts as negative. */
static void lat_add(lat_t *l, int64_t us) {
    if (!l->count || us > l->max_us) l->max_us = us;
    l->count++;
    if (us < 0) l->neg++;
    int64_t b = (us - LAT_MIN_US) / HIST_US;
    if (b < 0) b = 0;
    if (b >= HIST_BUCKETS) b = HIST_BUCKETS - 1;
    l->hist[b]++;
}

static double lat_q(const lat_t *l, double q) {
    if (!l->count) return -1;
    uint64_t want = (uint64_t)(q * (double)(l->count - 1)) + 1, seen = 0;
    for (int b = 0; b < HIST_BUCKETS; b++) {
        seen += l->hist[b];
        if (seen >= want) return ((b + 0.5) * HIST_US + LAT_MIN_US) / 1000.0;
    }
    return l->max_us / 1000.0;
}

/* A msgpack integer at *p (advances p); returns 0 on a non-integer. */
static int64_t mp_int(const uint8_t **pp, const uint8_t *end) {
    const uint8_t *p = *pp;
    if (p >= end) return 0;
    uint8_t t = *p++;
    int64_t v = 0;
    if (t < 0x80) v = t;
    else if (t >= 0xe0) v = (int8_t)t;
    else if (t == 0xcc && p + 1 <= end) { v = p[0]; p += 1; }
    else if (t == 0xcd && p + 2 <= end) { v = (p[0] << 8) | p[1]; p += 2; }
    else if (t == 0xce && p + 4 <= end) { v = ((uint32_t)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; p += 4; }
    else if ((t == 0xcf || t == 0xd3) && p + 8 <= end) {
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = (u << 8) | p[i];
        v = (int64_t)u;
        p += 8;
    } else if (t == 0xd0 && p + 1 <= end) { v = (int8_t)p[0]; p += 1; }
    else if (t == 0xd1 && p + 2 <= end) { v = (int16_t)((p[0] << 8) | p[1]); p += 2; }
    else if (t == 0xd2 && p + 4 <= end) { v = (int32_t)(((uint32_t)p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]); p += 4; }
    *pp = p;
    return v;
}

static void close_conn(conn_t *c) {
    if (c->state == S_CLOSED) return;
    if (c->state == S_OPEN) open_n--;
    if (c->state == S_JOINING || c->state == S_UPGRADING || c->state == S_CONNECTING) join_failed++;
    c->state = S_CLOSED;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    closed_n++;
    w_closed++;
}

static void send_all(conn_t *c, const uint8_t *data, size_t n) {
    ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
    if (w != (ssize_t)n) {
        /* Client frames are tiny; a full socket buffer here means the server stopped reading. */
        if (w < 0 && errno != EAGAIN) close_conn(c);
    }
}

static void on_message(conn_t *c, const uint8_t *p, size_t n, int64_t t_us) {
    const uint8_t *end = p + n;
    if (n < 2) return;
    if ((p[0] & 0xf0) == 0x90) p += 1;
    else if (p[0] == 0xdc) p += 3;
    else if (p[0] == 0xdd) p += 5;
    else return;
    if (p >= end) return;
    int type = *p++;
    if (type >= 128) return;
    if (c->state == S_JOINING) {
        if (type == T_WELCOME) {
            c->state = S_OPEN;
            joined++;
            open_n++;
        } else if (type == T_ERROR) {
            close_conn(c);
        }
        return;
    }
    w_msgs++;
    w_type[type]++;
    if (c->attendee) w_msgs_att++;
    else w_msgs_spec++;
    int64_t server_now = t_us + offset_us;
    if (type == T_STAGE) {
        mp_int(&p, end); /* answer */
        mp_int(&p, end); /* index */
        int64_t media = mp_int(&p, end);
        lat_add(&lat_stage, server_now - media);
        lat_add(c->attendee ? &lat_stage_att : &lat_stage_spec, server_now - media);
    } else if ((type == T_NEAR || type == T_FAR) && c->attendee) {
        /* Attendees get the crowd every tick; spectators gather it between their writes. */
        int64_t st = mp_int(&p, end);
        lat_add(&lat_crowd, server_now - st);
    }
}

static const char UPGRADE[] =
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

static void on_readable(conn_t *c, int idx) {
    for (;;) {
        if (c->cap - c->len < 65536) {
            c->cap = c->cap * 2 + 65536;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r == 0) { close_conn(c); return; }
        if (r < 0) {
            if (errno == EAGAIN) break;
            close_conn(c);
            return;
        }
        c->len += r;
        if ((size_t)r < c->cap - c->len + r) break; /* drained what was there */
    }
    int64_t t = now_us();
    size_t at = 0;
    if (c->state == S_UPGRADING) {
        uint8_t *hdr_end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!hdr_end) return;
        if (c->len < 12 || memcmp(c->buf + 9, "101", 3) != 0) { close_conn(c); return; }
        at = hdr_end + 4 - c->buf;
        c->state = S_JOINING;
        send_all(c, join_frames[idx], join_lens[idx]);
    }
    while (c->len - at >= 2) {
        uint8_t *f = c->buf + at;
        uint8_t op = f[0] & 0x0f;
        uint64_t n = f[1] & 0x7f;
        size_t head = 2;
        if (n == 126) {
            if (c->len - at < 4) break;
            n = (f[2] << 8) | f[3];
            head = 4;
        } else if (n == 127) {
            if (c->len - at < 10) break;
            n = 0;
            for (int i = 0; i < 8; i++) n = (n << 8) | f[2 + i];
            head = 10;
        }
        if (c->len - at < head + n) break;
        const uint8_t *payload = f + head;
        if (op == 0x2) {
            if (c->attendee) {
                w_bytes_att += head + n;
                if (n > 2 && (payload[1] == T_NEAR || payload[1] == T_FAR)) w_bytes_crowd_att += head + n;
            } else {
                w_bytes_spec += head + n;
            }
            on_message(c, payload, n, t);
            if (c->state == S_CLOSED) return;
        } else if (op == 0x8) {
            int code = n >= 2 ? (payload[0] << 8) | payload[1] : 1005;
            if (code >= 0 && code < 5000) close_codes[code]++;
            uint8_t reply[8] = {0x88, 0x82, 0, 0, 0, 0, payload[0], payload[1]};
            if (n >= 2) send_all(c, reply, 8);
            close_conn(c);
            return;
        } else if (op == 0x9) {
            uint8_t pong[6 + 125] = {0x8a, (uint8_t)(0x80 | n), 0, 0, 0, 0};
            memcpy(pong + 6, payload, n); /* zero mask: payload goes as is */
            send_all(c, pong, 6 + n);
        }
        at += head + n;
    }
    if (at) {
        memmove(c->buf, c->buf + at, c->len - at);
        c->len -= at;
    }
}

static int start_connect(conn_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = fd;
    c->state = S_CONNECTING;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(c - conns)};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static void print_stats(void) {
    double secs = (now_us() - w_start_us) / 1e6;
    int att_open = 0, spec_open = 0;
    for (int i = 0; i < n_clients; i++) {
        if (conns[i].state != S_OPEN || conns[i].stalled) continue;
        if (conns[i].attendee) att_open++;
        else spec_open++;
    }
    printf("{\"window_s\": %.3f, \"joined\": %d, \"join_failed\": %d, \"open\": %d, \"stalled\": %d, "
           "\"closed_total\": %d, \"closed_in_window\": %llu, \"messages\": %llu, \"deliveries_per_s\": %.1f, "
           "\"stage_per_s\": %.1f, \"near_per_s\": %.1f, \"far_per_s\": %.1f, \"poses_sent_per_s\": %.1f, "
           "\"down_kbps_attendee\": %.2f, \"crowd_kbps_attendee\": %.2f, \"down_kbps_spectator\": %.2f, \"down_kbps_per_client\": %.2f, "
           "\"stage_p50_ms\": %.2f, \"stage_p90_ms\": %.2f, \"stage_p99_ms\": %.2f, \"stage_max_ms\": %.2f, \"stage_samples\": %llu, \"stage_negative\": %llu, "
           "\"stage_attendee_p99_ms\": %.2f, \"stage_spectator_p99_ms\": %.2f, "
           "\"crowd_p50_ms\": %.2f, \"crowd_p99_ms\": %.2f, \"crowd_samples\": %llu, \"close_codes\": {",
           secs, joined, join_failed, open_n, stalled_n, closed_n, (unsigned long long)w_closed,
           (unsigned long long)w_msgs, w_msgs / secs, w_type[T_STAGE] / secs / (att_open + spec_open > 0 ? att_open + spec_open : 1),
           w_type[T_NEAR] / secs, w_type[T_FAR] / secs, w_poses / secs,
           att_open ? w_bytes_att * 8 / 1000.0 / secs / att_open : 0.0,
           att_open ? w_bytes_crowd_att * 8 / 1000.0 / secs / att_open : 0.0,
           spec_open ? w_bytes_spec * 8 / 1000.0 / secs / spec_open : 0.0,
           (att_open + spec_open) ? (w_bytes_att + w_bytes_spec) * 8 / 1000.0 / secs / (att_open + spec_open) : 0.0,
           lat_q(&lat_stage, 0.5), lat_q(&lat_stage, 0.9), lat_q(&lat_stage, 0.99), lat_stage.max_us / 1000.0,
           (unsigned long long)lat_stage.count, (unsigned long long)lat_stage.neg,
           lat_q(&lat_stage_att, 0.99), lat_q(&lat_stage_spec, 0.99),
           lat_q(&lat_crowd, 0.5), lat_q(&lat_crowd, 0.99), (unsigned long long)lat_crowd.count);
    int first = 1;
    for (int i = 0; i < 5000; i++)
        if (close_codes[i]) {
            printf("%s\"%d\": %d", first ? "" : ", ", i, close_codes[i]);
            first = 0;
        }
    printf("}}\n");
    fflush(stdout);
}

static void reset_window(void) {
    w_msgs = w_msgs_att = w_msgs_spec = w_bytes_att = w_bytes_spec = w_bytes_crowd_att = w_poses = w_closed = 0;
    memset(w_type, 0, sizeof w_type);
    memset(&lat_stage, 0, sizeof lat_stage);
    memset(&lat_stage_att, 0, sizeof lat_stage_att);
    memset(&lat_stage_spec, 0, sizeof lat_stage_spec);
    memset(&lat_crowd, 0, sizeof lat_crowd);
    w_start_us = now_us();
}

static int on_command(void) {
    static char line[256];
    static size_t have;
    ssize_t r = read(0, line + have, sizeof line - 1 - have);
    if (r <= 0) return 0;
    have += r;
    char *nl;
    while ((nl = memchr(line, '\n', have))) {
        *nl = 0;
        if (!strcmp(line, "start")) reset_window();
        else if (!strcmp(line, "stop")) print_stats();
        else if (!strncmp(line, "stall ", 6)) {
            double frac = atof(line + 6);
            int every = frac > 0 ? (int)(1.0 / frac + 0.5) : 0;
            for (int i = 0; every && i < n_clients; i += every) {
                conn_t *c = &conns[i];
                if (c->state != S_OPEN || c->stalled) continue;
                c->stalled = 1;
                stalled_n++;
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                int small = 4096;
                setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
            }
            printf("{\"event\": \"stalled\", \"stalled\": %d}\n", stalled_n);
            fflush(stdout);
        } else if (!strcmp(line, "quit")) return 0;
        size_t used = nl + 1 - line;
        memmove(line, nl + 1, have - used);
        have -= used;
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *joins_path = NULL, *poses_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clients")) n_clients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--attendees")) n_attendees = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pose-hz")) pose_hz = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ramp-per-s")) ramp_per_s = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-pending")) max_pending = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--offset-us")) offset_us = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--joins")) joins_path = argv[i + 1];
        else if (!strcmp(argv[i], "--poses")) poses_path = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!port || !n_clients || !joins_path || !poses_path) {
        fprintf(stderr, "usage: capload --port P --clients N --attendees A --joins F --poses F "
                        "[--pose-hz 20] [--ramp-per-s 500] [--max-pending 0] [--offset-us O]\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((int)rl.rlim_cur < n_clients + 16) {
        fprintf(stderr, "capload: open-file limit %d is below %d clients\n", (int)rl.rlim_cur, n_clients);
        return 2;
    }
    int nj;
    uint8_t *jall = read_frames(joins_path, &nj, &join_lens);
    join_frames = index_frames(jall, nj, join_lens);
    if (nj < n_clients) {
        fprintf(stderr, "capload: %d join frames for %d clients\n", nj, n_clients);
        return 2;
    }
    size_t *plens;
    uint8_t *pall = read_frames(poses_path, &n_poses, &plens);
    pose_frames = index_frames(pall, n_poses, plens);
    pose_lens = plens;
    conns = calloc(n_clients, sizeof(conn_t));
    epfd = epoll_create1(0);
    struct epoll_event in = {.events = EPOLLIN, .data.u32 = 0xffffffffu};
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &in);
    int started = 0, ramped_said = 0;
    int64_t t0 = now_us();
    int64_t pose_period = 1000000 / (pose_hz > 0 ? pose_hz : 1);
    struct epoll_event evs[1024];
    reset_window();
    for (;;) {
        int64_t t = now_us();
        int due = (int)((t - t0) * ramp_per_s / 1000000) + 1;
        /* --max-pending: no new connection while that many are still joining, so a server
         * that seats fewer a second than the ramp offers is not handed a queue of clients
         * that will have given up (JOIN_TIMEOUT_US) by the time it reaches them. */
        while (started < n_clients && started < due &&
               (!max_pending || started - joined - join_failed < max_pending)) {
            conn_t *c = &conns[started];
            c->attendee = started < n_attendees;
            c->pose_i = started * 7;
            c->started_us = t;
            c->next_pose_us = t + (int64_t)(started % 50) * pose_period / 50;
            if (start_connect(c) < 0) {
                c->state = S_CLOSED;
                join_failed++;
            }
            started++;
        }
        if (!ramped_said && started == n_clients && joined + join_failed >= n_clients) {
            ramped_said = 1;
            printf("{\"event\": \"ramped\", \"joined\": %d, \"join_failed\": %d, \"ramp_s\": %.2f}\n",
                   joined, join_failed, (now_us() - t0) / 1e6);
            fflush(stdout);
        }
        static int64_t last_check;
        if (t - last_check > 1000000) {
            /* A client not joined within JOIN_TIMEOUT_US has failed; report progress. */
            last_check = t;
            for (int i = 0; i < started; i++) {
                conn_t *c = &conns[i];
                if (c->state != S_OPEN && c->state != S_CLOSED && t - c->started_us > JOIN_TIMEOUT_US)
                    close_conn(c);
            }
            if (!ramped_said)
                fprintf(stderr, "[capload] %d/%d joined, %d failed\n", joined, n_clients, join_failed);
        }
        int n = epoll_wait(epfd, evs, 1024, 2);
        for (int i = 0; i < n; i++) {
            uint32_t id = evs[i].data.u32;
            if (id == 0xffffffffu) {
                if (!on_command()) {
                    print_stats();
                    return 0;
                }
                continue;
            }
            conn_t *c = &conns[id];
            if (c->state == S_CLOSED) continue;
            if (c->state == S_CONNECTING) {
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    close_conn(c);
                    continue;
                }
                if (evs[i].events & EPOLLOUT) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                    c->state = S_UPGRADING;
                    send_all(c, (const uint8_t *)UPGRADE, sizeof UPGRADE - 1);
                }
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, (int)id);
        }
        t = now_us();
        static int64_t next_pose_scan;
        if (t < next_pose_scan) continue; /* scan the attendees once a millisecond, not per wakeup */
        next_pose_scan = t + 1000;
        for (int i = 0; i < n_attendees && i < n_clients; i++) {
            conn_t *c = &conns[i];
            if (c->state != S_OPEN || c->stalled || t < c->next_pose_us) continue;
            c->next_pose_us += pose_period;
            if (c->next_pose_us < t) c->next_pose_us = t + pose_period; /* we fell behind: skip */
            unsigned k = c->pose_i++ % (unsigned)n_poses;
            send_all(c, pose_frames[k], pose_lens[k]);
            w_poses++;
        }
    }
}
