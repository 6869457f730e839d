/* A native load generator of the fan-out benchmark: `shoal.bench.loader`, in C, for its four protocols.
 *
 * Built and started by src/shoal/bench/fanout.py (`--loader c`), with TLS (wss://) where OpenSSL 3's headers are
 * installed, else without:
 *
 *   cc -O2 -DSHOAL_LOADER_TLS -o loader loader.c -lssl -lcrypto -lm
 *   cc -O2 -o loader loader.c -lm
 *
 * A Python loader costs about as much CPU per client as the server does, so on a small machine the loaders
 * would take the cores the server needs. This one does the same work in one epoll loop. It speaks to the
 * orchestrator as `shoal.bench.loader` does, except that its plan arrives as lines of text (fanout.py
 * translates the JSON plan, so no general JSON parser is needed here):
 *
 *   host=127.0.0.1 port=8000 protocol=binary path=/ws hz=20 drain=1 latency_bin_ms=0.01 ready_timeout=20 idle=0
 *       clients=N [tls=1 [ca_file=PATH]]
 *                          the settings, on one line; for `broadcast`, `path` is the prefix of each client's room,
 *                          for `colyseus` the route of its seat requests (loader.py's COLYSEUS_MATCHMAKE_PATH);
 *                          `tls=1` for wss://, trusting the PEM certificates of `ca_file` (%XX-escaped) too
 *   INDEX ROOM Z [POSE_HEX]  one line per client; binary only: POSE_HEX, its pose frame, patched before each send
 *   start START END        once everyone is ready: the window, in wall-clock seconds
 *
 * and it answers with the same JSON lines: `{"ready": true, "ids": [...]}`, then `{"result": {...}}` with the
 * keys and meanings of `shoal.bench.loader.run`. Each client connects (at most CONNECT_CONCURRENCY handshakes
 * at once) and, as BenchClient does in its protocol:
 *
 *   binary     upgrades to `shoal.v1.bin` on `path`, sends `hello` and `join` (JSON behind a 0x00 tag) and waits
 *              for `welcome` and `joined`; sends the pose frame with `t` and the head's x patched in; reads the
 *              entries of binary ticks;
 *   json       the same on `shoal.v1.json`, every message a text frame: poses formatted as loader.py's
 *              JSON_POSE, and the `poses` of `tick` messages read by a strict JSON scanner (read_tick);
 *   broadcast  upgrades without a subprotocol on `path` + ROOM (a ws-broadcast relay has no handshake of its
 *              own: the client is ready once upgraded, and its id is its INDEX), sends BROADCAST_POSE, and reads
 *              every message as one pose (its own echo included, skipped as a tick's own entry is);
 *   colyseus   joins a room of a Colyseus 0.16 server (the `colyseus` peer) as colyseus.js 0.16's joinOrCreate does:
 *              reserves a seat with `POST path` and the body {"room": ROOM} on a connection of its own (`Connection:
 *              close`; the answer's body delimited by Content-Length or chunked), upgrades without a subprotocol on
 *              /PROCESS_ID/ROOM_ID?sessionId=SESSION_ID from the answer, waits for the server's JOIN_ROOM (10) and
 *              confirms it with a JOIN_ROOM of one byte; its id is its INDEX. It sends each pose as a binary ROOM_DATA
 *              message (13): the type "pose" as a fixstr, then BROADCAST_POSE as a msgpack string; it reads every
 *              ROOM_DATA as one pose of another member (the relay excludes the sender: no echo), reports an ERROR
 *              (11, "CODE: MESSAGE") or a LEAVE_ROOM (12), passes JOIN_ROOM, ROOM_STATE (14), ROOM_STATE_PATCH (15)
 *              and ROOM_DATA_BYTES (17), and reports any other code as unreadable. Only the msgpack it meets is read:
 *              string headers (fixstr, str 8/16/32) and, for an ERROR's code, unsigned integers (fixint, uint
 *              8/16/32); a message's type and an error's fields come little-endian, as @colyseus/schema writes them.
 *
 * Over TLS (`tls=1`, a build with SHOAL_LOADER_TLS) each connection, once its TCP connect completes, runs a TLS
 * handshake in the same epoll loop before its first request; the server's certificate must be trusted (the default
 * trust store, and `ca_file`) and name `host` (an IP address, or a name, which is also sent as SNI). A failed
 * handshake ends the process as a refused upgrade does, with OpenSSL's reasons. A build without TLS refuses `tls=1`.
 *
 * A 101 answer to the upgrade must carry, once, the Sec-WebSocket-Accept of the client's key (RFC 6455 4.1:
 * base64 of the SHA-1 of the key and the protocol's GUID, both written out here, so that `cc` alone builds
 * this file) and, in binary and json, the subprotocol asked for.
 *
 * After the start each client sends its pose at `hz` from a random phase, its sequence number in mm as the
 * head's x and the send time as `t`, and counts every pose of the others as BenchClient.record does:
 * deliveries and latency bins by receive time (when the read returned), duplicates, and a bit set of sequence
 * numbers per sender; a message it cannot read is reported in `errors`, as the Python loader reports it. Any
 * failure before `ready` ends the process with a message on stderr and exit code 1; SIGALRM ends it if a run
 * overruns its plan by HARD_MARGIN_S.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef SHOAL_LOADER_TLS
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the binary protocol is little-endian, and this program copies numbers as the host lays them out"
#endif

#define HARD_MARGIN_S 30
#define CONNECT_CONCURRENCY 32
#define CLOSE_TIMEOUT_S 2.0
#define MAX_MESSAGE (16u << 20) /* as the Python loader's max_msg_size */
#define READ_CHUNK 16384
#define LATENCY_BINS (1 << 20) /* dense bins from 0; others (never, on one host) go to a short list */
#define MAX_SEQ (1 << 22)      /* sequence numbers beyond this are garbage, not a long run */
#define MAX_ERRORS 1000
#define EVENTS_PER_POLL 64 /* few: a burst of ticks read between two looks at the send schedule stays short */
#define STDIN_ID UINT32_MAX

#define TAG_JSON 0x00
#define TAG_TICK 0x02
#define LEFT 0x01
#define RIGHT 0x02
#define HAS_T 0x04
#define HEAD_WIDE 0x08
#define LEFT_WIDE 0x10
#define RIGHT_WIDE 0x20
#define HEAD_SCALE 10000.0
#define AGE_SCALE 100.0
#define POSE_T_OFFSET 2
#define POSE_X_OFFSET 10

#define JSON_MAX_DEPTH 1000 /* as msgspec, bounded by the interpreter's recursion limit; poses go 5 deep */
#define JSON_NUMBER_MAX 63 /* characters of a number whose value is read (ids, x, t: 20 at most) */

/* loader.py's JSON_POSE and BROADCAST_POSE (head x, z, t; the id first in the broadcast one), byte for byte. */
#define POSE_JSON_BODY \
    "\"type\":\"pose\"," \
    "\"head\":{\"pos\":[%.3f,1.6,%.3f],\"rot\":[0.0,0.0,0.0,1.0]}," \
    "\"left\":{\"pos\":[-0.3,1.1,-0.3],\"rot\":[0.0,0.0,0.0,1.0]}," \
    "\"right\":{\"pos\":[0.3,1.1,-0.3],\"rot\":[0.0,0.7071067811865476,0.0,0.7071067811865476]}," \
    "\"t\":%.3f}"
#define JSON_POSE "{" POSE_JSON_BODY
#define BROADCAST_POSE "{\"id\":%d," POSE_JSON_BODY
#define POSE_TEXT_MAX 384 /* about 250 bytes with a 13-digit t; snprintf truncation is checked anyway */

#define TICK_PREFIX "{\"type\":\"tick\"" /* how loader.py tells a JSON tick from other messages */

/* Colyseus 0.16's message codes (`Protocol` of @colyseus/core): a message's first byte. */
#define COLYSEUS_JOIN_ROOM 10
#define COLYSEUS_ERROR 11
#define COLYSEUS_LEAVE_ROOM 12
#define COLYSEUS_ROOM_DATA 13
#define COLYSEUS_ROOM_STATE 14
#define COLYSEUS_ROOM_STATE_PATCH 15
#define COLYSEUS_ROOM_DATA_BYTES 17
#define COLYSEUS_POSE_TYPE "\xa4pose" /* a pose message's type, "pose", as a fixstr */
#define COLYSEUS_POSE_HEAD 9           /* ROOM_DATA, the type, and the pose text's str 16 header at most */
#define COLYSEUS_LEAVE_TEXT "LEAVE_ROOM: the server asked the client to leave the room" /* as loader.py words it */
#define SEAT_ANSWER_MAX 16384 /* bytes of the answer to a seat request, head and body */

enum protocol { BINARY, JSON, BROADCAST, COLYSEUS };
enum state { CONNECTING, HANDSHAKING, MATCHMAKING, UPGRADING, GREETING, JOINING, READY, CLOSED };

typedef struct {
    uint32_t id;
    uint32_t words;
    uint64_t *bits; /* NULL: an empty slot */
} Seen;             /* the sequence numbers received from one sender */

typedef struct {
    int fd;
#ifdef SHOAL_LOADER_TLS
    SSL *ssl; /* over TLS: the connection's session; NULL on ws:// */
#endif
    enum state state;
    int index;
    char room[128];
    char z[40]; /* echoed as given: the result's `positions` */
    double z_value;
    uint8_t pose[128]; /* binary: the pose frame that is patched and sent */
    size_t pose_len;
    uint8_t mask[4];
    char accept[29]; /* the Sec-WebSocket-Accept the upgrade must answer to this connection's key */
    char seat[208];  /* colyseus: the room's /PROCESS_ID/ROOM_ID?sessionId=SESSION_ID once reserved; empty before */
    uint32_t id;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_sent, out_cap;
    int polling_out;
    int read_waits_out, write_waits_in; /* TLS: a read must first write (renegotiation), a write must first read */
    int closing; /* we sent the close: what follows is not reported */
    double next_at;
    long seq, first_seq, last_seq; /* first and last in the window: 0 for none */
    int close_code;                /* -1: none */
    Seen *seen;
    uint32_t seen_count, seen_cap;
} Client;

typedef struct {
    char *data;
    size_t len, cap;
} Text;

typedef struct {
    long long index;
    unsigned long long count;
} Bin;

static struct {
    char host[256], port[16], path[512];
    enum protocol protocol;
    double hz, drain, bin_ms, ready_timeout;
    int idle, count, tls;
    char ca_file[4096];
} plan = {.path = "/ws", .protocol = BINARY, .hz = 20.0, .drain = 1.0, .bin_ms = 0.01, .ready_timeout = 30.0};

static Client *clients;
static int poller;
static struct sockaddr_storage address;
static socklen_t address_len;
static uint64_t random_state;

static double window_start, window_end;
static unsigned long long deliveries, duplicates;
static uint32_t *bins;
static Bin *extra_bins;
static size_t extra_count, extra_cap;
static Text errors;
static int error_count, errors_dropped;

static uint32_t *heap; /* clients by next_at: who sends next */
static int heap_count;
static int ready_count, in_flight, open_count;

static char stdin_buffer[1 << 16];
static size_t stdin_len, stdin_line_len; /* bytes buffered; of them, the current line and its newline */

/* ---- small helpers -------------------------------------------------------------------------------------- */

static void fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("loader.c: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

static void *grow(void *memory, size_t bytes) {
    void *grown = realloc(memory, bytes);
    if (!grown) fail("out of memory (%zu bytes)", bytes);
    return grown;
}

static double wall(void) { /* as time.time() */
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double monotonic(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 + usage.ru_stime.tv_sec +
           usage.ru_stime.tv_usec * 1e-6;
}

static uint64_t random_next(void) { /* xorshift64* */
    random_state ^= random_state >> 12;
    random_state ^= random_state << 25;
    random_state ^= random_state >> 27;
    return random_state * 2685821657736338717ULL;
}

static void text_append(Text *text, const char *data, size_t len) {
    if (text->len + len + 1 > text->cap) {
        text->cap = (text->len + len + 1) * 2;
        text->data = grow(text->data, text->cap);
    }
    memcpy(text->data + text->len, data, len);
    text->len += len;
    text->data[text->len] = 0;
}

static void text_printf(Text *text, const char *format, ...) {
    char small[256];
    va_list args;
    va_start(args, format);
    int len = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (len < (int)sizeof small) {
        text_append(text, small, (size_t)len);
        return;
    }
    char *large = grow(NULL, (size_t)len + 1);
    va_start(args, format);
    vsnprintf(large, (size_t)len + 1, format, args);
    va_end(args);
    text_append(text, large, (size_t)len);
    free(large);
}

static void text_json_string(Text *text, const char *s, size_t len) {
    text_append(text, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char escaped[2] = {'\\', (char)c};
            text_append(text, escaped, 2);
        } else if (c < 0x20) {
            text_printf(text, "\\u%04x", c);
        } else {
            text_append(text, (const char *)&c, 1);
        }
    }
    text_append(text, "\"", 1);
}

static void write_all(int fd, const char *data, size_t len) {
    while (len) {
        ssize_t written = write(fd, data, len);
        if (written < 0) {
            if (errno == EINTR) continue;
            fail("cannot write to the orchestrator: %s", strerror(errno));
        }
        data += written;
        len -= (size_t)written;
    }
}

static void add_error(const char *format, ...) {
    if (error_count >= MAX_ERRORS) {
        errors_dropped++;
        return;
    }
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (error_count++) text_append(&errors, ", ", 2);
    text_json_string(&errors, message, strlen(message));
}

/* ---- just enough JSON to read the server's answers --------------------------------------------------------- */

/* The value of the top-level `key` of the JSON object in [s, end): a pointer to its first character, or NULL. */
static const char *json_value(const char *s, const char *end, const char *key) {
    size_t key_len = strlen(key);
    int depth = 0, expect_key = 0;
    for (const char *p = s; p < end; p++) {
        if (*p == '"') {
            const char *start = ++p;
            while (p < end && *p != '"') p += *p == '\\' ? 2 : 1;
            if (p >= end) return NULL;
            if (depth == 1 && expect_key) {
                expect_key = 0;
                if ((size_t)(p - start) == key_len && !memcmp(start, key, key_len)) {
                    const char *value = p + 1;
                    while (value < end && strchr(" \t\r\n:", *value)) value++;
                    return value < end ? value : NULL;
                }
            }
        } else if (*p == '{' || *p == '[') {
            expect_key = ++depth == 1 && *p == '{';
        } else if (*p == '}' || *p == ']') {
            depth--;
        } else if (*p == ',' && depth == 1) {
            expect_key = 1;
        }
    }
    return NULL;
}

/* The string value of top-level `key` (simple escapes undone) into `out`; "None" when absent, as Python's
 * `message.get(key)` formats. */
static void json_string(const char *s, const char *end, const char *key, char *out, size_t size) {
    const char *p = json_value(s, end, key);
    if (!p || *p != '"') {
        snprintf(out, size, "None");
        return;
    }
    size_t n = 0;
    for (p++; p < end && *p != '"' && n + 1 < size; p++) {
        if (*p == '\\' && p + 1 < end) p++;
        out[n++] = *p;
    }
    out[n] = 0;
}

static int json_type_is(const char *s, const char *end, const char *type) {
    const char *p = json_value(s, end, "type");
    size_t len = strlen(type);
    return p && *p == '"' && end - p > (ptrdiff_t)len + 1 && !memcmp(p + 1, type, len) && p[len + 1] == '"';
}

/* An `error` message as the Python loader words it: "CODE: MESSAGE". */
static void error_text(const char *s, const char *end, char *out, size_t size) {
    char code[128], message[256];
    json_string(s, end, "code", code, sizeof code);
    json_string(s, end, "message", message, sizeof message);
    snprintf(out, size, "%s: %s", code, message);
}

/* ---- the plan ------------------------------------------------------------------------------------------------ */

/* The first buffered line, NUL-terminated at the start of stdin_buffer, if there is a whole one. */
static char *buffered_line(void) {
    char *newline = memchr(stdin_buffer, '\n', stdin_len);
    if (!newline) return NULL;
    *newline = 0;
    stdin_line_len = (size_t)(newline + 1 - stdin_buffer);
    return stdin_buffer;
}

static int read_stdin_line(char **line) { /* blocking; 0 on EOF */
    for (;;) {
        if ((*line = buffered_line())) return 1;
        if (stdin_len == sizeof stdin_buffer - 1) fail("a plan line is longer than %zu bytes", stdin_len);
        ssize_t got = read(0, stdin_buffer + stdin_len, sizeof stdin_buffer - 1 - stdin_len);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0) return 0;
        stdin_len += (size_t)got;
    }
}

static void consume_stdin_line(void) {
    memmove(stdin_buffer, stdin_buffer + stdin_line_len, stdin_len - stdin_line_len);
    stdin_len -= stdin_line_len;
    stdin_line_len = 0;
}

static int hex_digit(char c);

/* A setting's `value`, its %XX escapes undone, into `out` (fanout.py escapes a path: a plan line splits at spaces). */
static void unescape(const char *name, const char *value, char *out, size_t size) {
    if (strlen(value) >= size) fail("the setting %s is longer than %zu bytes", name, size - 1);
    size_t n = 0;
    for (const char *p = value; *p; n++) {
        if (p[0] == '%' && hex_digit(p[1]) >= 0 && hex_digit(p[2]) >= 0) {
            out[n] = (char)(hex_digit(p[1]) << 4 | hex_digit(p[2]));
            p += 3;
        } else {
            out[n] = *p++;
        }
    }
    out[n] = 0;
}

static enum protocol protocol_named(const char *name) {
    if (!strcmp(name, "binary")) return BINARY;
    if (!strcmp(name, "json")) return JSON;
    if (!strcmp(name, "broadcast")) return BROADCAST;
    if (!strcmp(name, "colyseus")) return COLYSEUS;
    fail("unknown protocol %s (binary, json, broadcast or colyseus)", name);
    return BINARY;
}

static void read_settings(char *line) {
    for (char *token = strtok(line, " "); token; token = strtok(NULL, " ")) {
        char *value = strchr(token, '=');
        if (!value) fail("a setting without '=': %s", token);
        *value++ = 0;
        if (!strcmp(token, "host")) snprintf(plan.host, sizeof plan.host, "%s", value);
        else if (!strcmp(token, "port")) snprintf(plan.port, sizeof plan.port, "%s", value);
        else if (!strcmp(token, "path")) snprintf(plan.path, sizeof plan.path, "%s", value);
        else if (!strcmp(token, "protocol")) plan.protocol = protocol_named(value);
        else if (!strcmp(token, "hz")) plan.hz = atof(value);
        else if (!strcmp(token, "drain")) plan.drain = atof(value);
        else if (!strcmp(token, "latency_bin_ms")) plan.bin_ms = atof(value);
        else if (!strcmp(token, "ready_timeout")) plan.ready_timeout = atof(value);
        else if (!strcmp(token, "idle")) plan.idle = atoi(value);
        else if (!strcmp(token, "clients")) plan.count = atoi(value);
        else if (!strcmp(token, "tls")) plan.tls = atoi(value);
        else if (!strcmp(token, "ca_file")) unescape(token, value, plan.ca_file, sizeof plan.ca_file);
        else fail("unknown setting %s", token);
    }
    if (!plan.host[0] || !plan.port[0] || plan.count <= 0 || plan.hz <= 0 || plan.bin_ms <= 0)
        fail("the settings need host, port, clients > 0, hz > 0 and latency_bin_ms > 0");
}

static void read_client(Client *client, char *line) {
    char hex[2 * sizeof client->pose + 1];
    int fields = sscanf(line, "%d %127s %39s %256s", &client->index, client->room, client->z, hex);
    char *z_end;
    client->z_value = strtod(client->z, &z_end);
    if (fields < 3 || *z_end || client->index < 0)
        fail("a client line is not 'INDEX ROOM Z [POSE_HEX]': %s", line);
    client->fd = -1;
    client->close_code = -1;
    if (plan.protocol == BROADCAST || plan.protocol == COLYSEUS)
        client->id = (uint32_t)client->index; /* no ids of Shoal's: its index */
    if (plan.protocol != BINARY) return;
    if (fields != 4) fail("client %d: the binary protocol needs its pose frame (POSE_HEX)", client->index);
    size_t len = strlen(hex) / 2;
    for (size_t i = 0; i < len; i++) {
        unsigned byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) fail("bad pose hex for client %d", client->index);
        client->pose[i] = (uint8_t)byte;
    }
    client->pose_len = len;
    if (len < POSE_X_OFFSET + 3 || (client->pose[1] & (HAS_T | HEAD_WIDE)) != HAS_T)
        fail("the pose of client %d must carry t and a compact head", client->index);
}

/* ---- the upgrade's key and accept (RFC 6455 4.1, 4.2.2) -------------------------------------------------------- */

static uint32_t rotate_left(uint32_t word, int bits) { return word << bits | word >> (32 - bits); }

/* SHA-1 (FIPS 180-4) of `len` bytes: the plain textbook form, enough for one short string per connection. */
static void sha1(const uint8_t *data, size_t len, uint8_t digest[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = (len + 8) / 64 * 64 + 64; /* the data, 0x80, zeros, and its length in bits in the last 8 bytes */
    for (size_t offset = 0; offset < total; offset += 64) {
        uint8_t block[64];
        for (size_t i = 0; i < 64; i++) {
            size_t at = offset + i;
            block[i] = at < len ? data[at] : at == len ? 0x80 : 0;
        }
        if (offset + 64 == total)
            for (int i = 0; i < 8; i++) block[56 + i] = (uint8_t)((uint64_t)len * 8 >> (56 - 8 * i));
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 |
                   block[4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rotate_left(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) {
                f = (b & c) | (~b & d), k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d, k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d, k = 0xCA62C1D6;
            }
            uint32_t next = rotate_left(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rotate_left(b, 30), b = a, a = next;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    for (int i = 0; i < 20; i++) digest[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

/* Base64 (RFC 4648, padded) of `len` bytes into `out`, which has room for 4 * ceil(len / 3) characters and a NUL. */
static void base64(const uint8_t *data, size_t len, char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3, out += 4) {
        uint32_t triple = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0) |
                          (i + 2 < len ? data[i + 2] : 0);
        for (size_t j = 0; j < 4; j++) out[j] = i + j <= len ? alphabet[(triple >> (18 - 6 * j)) & 63] : '=';
    }
    *out = 0;
}

/* The Sec-WebSocket-Accept of a 24-character Sec-WebSocket-Key: base64(SHA-1(key + the protocol's GUID)), 28
 * characters. RFC 6455 1.3: "dGhlIHNhbXBsZSBub25jZQ==" gives "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=". */
static void accept_of(const char key[25], char accept[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t keyed[24 + sizeof guid - 1], digest[20];
    memcpy(keyed, key, 24);
    memcpy(keyed + 24, guid, sizeof guid - 1);
    sha1(keyed, sizeof keyed, digest);
    base64(digest, sizeof digest, accept);
}

/* ---- TLS (OpenSSL 3, in a build with SHOAL_LOADER_TLS) -------------------------------------------------------- */

#ifdef SHOAL_LOADER_TLS
static SSL_CTX *tls_context; /* one for every connection; NULL on ws:// */
static int host_is_address;  /* plan.host is an IP literal: checked against the certificate's addresses, no SNI */

/* OpenSSL's queued errors as ERR_error_string_n words them, joined by "; " into `out` (empty if none). The queue is
 * left empty: SSL_get_error reads it, so an error left behind would be taken for the next call's. */
static void tls_reasons(char *out, size_t size) {
    size_t len = 0;
    out[0] = 0;
    for (unsigned long code; (code = ERR_get_error()) != 0;) {
        if (len && len + 2 < size) len += (size_t)snprintf(out + len, size - len, "; ");
        if (len + 1 < size) {
            ERR_error_string_n(code, out + len, size - len);
            len += strlen(out + len);
        }
    }
}

/* End the run on a TLS failure of a client that has not joined (`what` failed; `error` is SSL_get_error's verdict),
 * as on a refused upgrade: with OpenSSL's reasons and, when the server's certificate was refused, why. */
static void tls_fail(Client *client, const char *what, int error) {
    int system_error = errno;
    char reasons[1024];
    tls_reasons(reasons, sizeof reasons);
    long verified = SSL_get_verify_result(client->ssl);
    if (verified != X509_V_OK)
        fail("client %d: %s with %s:%s: certificate verification failed: %s (%s)", client->index, what, plan.host,
             plan.port, X509_verify_cert_error_string(verified), reasons);
    if (!reasons[0] && error == SSL_ERROR_SYSCALL)
        snprintf(reasons, sizeof reasons, "%s", system_error ? strerror(system_error) : "the connection ended");
    else if (!reasons[0])
        snprintf(reasons, sizeof reasons, "SSL_get_error %d", error);
    fail("client %d: %s with %s:%s failed: %s", client->index, what, plan.host, plan.port, reasons);
}

/* The TLS context of every connection (as ssl.create_default_context, the Python loader's): TLS 1.2 or later, the
 * server's certificate verified against the default trust store and the plan's ca_file. Writes may be partial and
 * retried from a moved buffer (the output buffer grows by realloc); reads take what the socket has (read ahead);
 * an end of the stream without close_notify is an end as a TCP FIN is (TLS carries WebSocket frames, whose close
 * is their own). */
static void tls_setup(void) {
    char reasons[1024];
    tls_context = SSL_CTX_new(TLS_client_method());
    if (!tls_context) {
        tls_reasons(reasons, sizeof reasons);
        fail("cannot make a TLS context: %s", reasons);
    }
    SSL_CTX_set_min_proto_version(tls_context, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls_context, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_verify_paths(tls_context); /* a system without a trust store still trusts ca_file */
    ERR_clear_error();
    if (plan.ca_file[0] && !SSL_CTX_load_verify_locations(tls_context, plan.ca_file, NULL)) {
        tls_reasons(reasons, sizeof reasons);
        fail("cannot load the certificates of %s: %s", plan.ca_file, reasons);
    }
    SSL_CTX_set_mode(tls_context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(tls_context, 1);
    SSL_CTX_set_options(tls_context, SSL_OP_IGNORE_UNEXPECTED_EOF);
    unsigned char address[sizeof(struct in6_addr)];
    host_is_address = inet_pton(AF_INET, plan.host, address) == 1 || inet_pton(AF_INET6, plan.host, address) == 1;
}

/* A TLS session on the client's new socket, to verify that the certificate names plan.host: an IP address among its
 * addresses, or a name among its names (sent as SNI too, which an address must not be). */
static void tls_attach(Client *client) {
    client->ssl = SSL_new(tls_context);
    if (!client->ssl || !SSL_set_fd(client->ssl, client->fd)) {
        char reasons[1024];
        tls_reasons(reasons, sizeof reasons);
        fail("client %d: cannot make a TLS session: %s", client->index, reasons);
    }
    int named = host_is_address
                    ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(client->ssl), plan.host)
                    : SSL_set_tlsext_host_name(client->ssl, plan.host) && SSL_set1_host(client->ssl, plan.host);
    if (!named) fail("client %d: cannot ask the server's certificate to name %s", client->index, plan.host);
}
#endif

/* ---- sockets ---------------------------------------------------------------------------------------------------- */

static void watch(Client *client, int out) {
    struct epoll_event event = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = (uint32_t)(client - clients)};
    epoll_ctl(poller, EPOLL_CTL_MOD, client->fd, &event);
    client->polling_out = out;
}

/* Drive a TLS client's handshake, once its socket is connected: 1 when done (at once on ws://), 0 while it waits for
 * the server (EPOLLIN, always watched) or for room to write (EPOLLOUT, watched meanwhile); a failure ends the run. */
static int handshake(Client *client) {
#ifdef SHOAL_LOADER_TLS
    if (!client->ssl) return 1;
    errno = 0;
    int result = SSL_connect(client->ssl);
    if (result == 1) return 1;
    int error = SSL_get_error(client->ssl, result);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) tls_fail(client, "the TLS handshake", error);
    int out = error == SSL_ERROR_WANT_WRITE;
    if (out != client->polling_out) watch(client, out);
    return 0;
#else
    (void)client;
    return 1;
#endif
}

/* Send what the connection takes of `len` bytes: the count sent; 0 if it takes none now (a TLS write that must first
 * read sets write_waits_in); -1 if the connection broke (a TLS failure before the client joined ends the run). */
static ssize_t send_some(Client *client, const uint8_t *data, size_t len) {
#ifdef SHOAL_LOADER_TLS
    if (client->ssl) {
        size_t sent;
        if (SSL_write_ex(client->ssl, data, len, &sent)) {
            client->write_waits_in = 0;
            return (ssize_t)sent;
        }
        int error = SSL_get_error(client->ssl, 0);
        client->write_waits_in = error == SSL_ERROR_WANT_READ;
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return 0;
        if (client->state != READY) tls_fail(client, "a TLS write", error);
        ERR_clear_error();
        return -1;
    }
#endif
    for (;;) {
        ssize_t sent = send(client->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent >= 0) return sent;
        if (errno != EINTR) return errno == EAGAIN ? 0 : -1;
    }
}

/* Read what the connection has into `data`, at most `len` bytes: the count read; 0 at the end of the stream (a FIN,
 * or TLS's close_notify); -1 with errno EAGAIN if nothing came yet (a TLS read that must first write sets
 * read_waits_out and watches EPOLLOUT); -1 with another errno if the connection broke (a TLS failure before the
 * client joined ends the run). */
static ssize_t receive_some(Client *client, uint8_t *data, size_t len) {
#ifdef SHOAL_LOADER_TLS
    if (client->ssl) {
        size_t got;
        if (SSL_read_ex(client->ssl, data, len, &got)) {
            client->read_waits_out = 0;
            return (ssize_t)got;
        }
        int error = SSL_get_error(client->ssl, 0);
        client->read_waits_out = error == SSL_ERROR_WANT_WRITE;
        if (error == SSL_ERROR_ZERO_RETURN) return 0;
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            if (client->read_waits_out && !client->polling_out) watch(client, 1);
            errno = EAGAIN;
            return -1;
        }
        if (client->state != READY) tls_fail(client, "a TLS read", error);
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
#endif
    return recv(client->fd, data, len, 0);
}

/* Whether OpenSSL holds bytes of the client's connection that it read from the socket (read ahead) or decrypted but
 * did not return yet: epoll cannot report them, so they are read at once. */
static int input_held(const Client *client) {
#ifdef SHOAL_LOADER_TLS
    return client->ssl && SSL_has_pending(client->ssl);
#else
    (void)client;
    return 0;
#endif
}

/* Close the client's connection, which leaves the poller with it; a TLS one first sends close_notify (best effort,
 * and only on a sound session: never after a fatal error, which leaves the handshake unfinished). */
static void close_connection(Client *client) {
#ifdef SHOAL_LOADER_TLS
    if (client->ssl) {
        if (SSL_is_init_finished(client->ssl)) SSL_shutdown(client->ssl);
        ERR_clear_error();
        SSL_free(client->ssl);
        client->ssl = NULL;
    }
#endif
    close(client->fd);
    client->fd = -1;
}

static void drop(Client *client, int close_code) {
    if (client->state == CLOSED) return;
    if (client->state != READY) fail("client %d: connection ended before it joined", client->index);
    if (!client->closing && client->close_code < 0) client->close_code = close_code;
    client->state = CLOSED;
    open_count--;
    close_connection(client);
}

/* Send the output buffer as far as the connection takes it; the rest waits for EPOLLOUT (or, for a TLS write that
 * must first read, for EPOLLIN). */
static void flush(Client *client) {
    while (client->out_sent < client->out_len) {
        ssize_t sent = send_some(client, client->out + client->out_sent, client->out_len - client->out_sent);
        if (sent < 0) {
            drop(client, 1006);
            return;
        }
        if (!sent) break;
        client->out_sent += (size_t)sent;
    }
    int pending = client->out_sent < client->out_len;
    if (!pending) client->out_len = client->out_sent = 0;
    int out = (pending && !client->write_waits_in) || client->read_waits_out;
    if (out != client->polling_out) watch(client, out);
}

/* `len` more bytes at the end of the client's output buffer, to be filled by the caller. */
static uint8_t *reserve(Client *client, size_t len) {
    if (client->out_len + len > client->out_cap) {
        client->out_cap = (client->out_len + len) * 2;
        client->out = grow(client->out, client->out_cap);
    }
    uint8_t *at = client->out + client->out_len;
    client->out_len += len;
    return at;
}

/* Queue and send one masked client frame (RFC 6455 5.3: the client masks; one key per connection). */
static void send_frame(Client *client, int opcode, const uint8_t *payload, size_t len) {
    uint8_t header[14], *p = header;
    *p++ = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        *p++ = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        *p++ = 0x80 | 126;
        *p++ = (uint8_t)(len >> 8);
        *p++ = (uint8_t)len;
    } else {
        *p++ = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8) *p++ = (uint8_t)((uint64_t)len >> shift);
    }
    memcpy(p, client->mask, 4);
    memcpy(reserve(client, (size_t)(p + 4 - header)), header, (size_t)(p + 4 - header));
    uint8_t *masked = reserve(client, len);
    for (size_t i = 0; i < len; i++) masked[i] = payload[i] ^ client->mask[i & 3];
    if (client->state != CONNECTING && client->state != HANDSHAKING) flush(client); /* else once connected */
}

/* One JSON message to the server: a text frame in the JSON protocol, a binary one behind TAG_JSON in binary. */
static void send_json(Client *client, const Text *json) {
    if (plan.protocol != BINARY) {
        send_frame(client, 0x1, (const uint8_t *)json->data, json->len);
        return;
    }
    uint8_t *frame = grow(NULL, json->len + 1);
    frame[0] = TAG_JSON;
    memcpy(frame + 1, json->data, json->len);
    send_frame(client, 0x2, frame, json->len + 1);
    free(frame);
}

static void send_close(Client *client, int code) {
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    send_frame(client, 0x8, payload, 2);
}

/* The subprotocol a client asks for (and the server must answer): none for the ws-broadcast dialect and Colyseus. */
static const char *subprotocol_of(enum protocol protocol) {
    return protocol == BINARY ? "shoal.v1.bin" : protocol == JSON ? "shoal.v1.json" : NULL;
}

/* Queue a Colyseus client's seat request (colyseus.js 0.16's joinOrCreate): POST `path` with {"room": ROOM}. */
static void queue_seat_request(Client *client) {
    Text body = {0}, request = {0};
    text_append(&body, "{\"room\": ", 9);
    text_json_string(&body, client->room, strlen(client->room));
    text_append(&body, "}", 1);
    text_printf(&request,
                "POST %s HTTP/1.1\r\nHost: %s:%s\r\nAccept: application/json\r\nContent-Type: application/json\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                plan.path, plan.host, plan.port, body.len);
    text_append(&request, body.data, body.len);
    memcpy(reserve(client, request.len), request.data, request.len);
    free(request.data);
    free(body.data);
}

/* Connect the client's socket and queue its first request: a Colyseus client's seat request until it has a seat,
 * else the upgrade (on the seat's room for Colyseus, on `path` + ROOM for broadcast, on `path` for Shoal's own). */
static void open_connection(Client *client) {
    client->fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (client->fd < 0) fail("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(client->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(client->fd, (struct sockaddr *)&address, address_len) < 0 && errno != EINPROGRESS)
        fail("client %d: cannot connect to %s:%s: %s", client->index, plan.host, plan.port, strerror(errno));
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(client - clients)};
    epoll_ctl(poller, EPOLL_CTL_ADD, client->fd, &event);
    client->polling_out = 1;
    client->read_waits_out = client->write_waits_in = 0;
    client->state = CONNECTING;
#ifdef SHOAL_LOADER_TLS
    if (tls_context) tls_attach(client);
#endif
    if (plan.protocol == COLYSEUS && !client->seat[0]) {
        queue_seat_request(client);
        return;
    }
    uint64_t mask = random_next();
    memcpy(client->mask, &mask, 4);

    uint64_t nonce[2] = {random_next(), random_next()};
    char key[25]; /* base64 of 16 bytes: 22 characters and "==" */
    base64((const uint8_t *)nonce, sizeof nonce, key);
    accept_of(key, client->accept);
    Text request = {0};
    const char *subprotocol = subprotocol_of(plan.protocol);
    text_printf(&request,
                "GET %s%s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                plan.protocol == COLYSEUS ? client->seat : plan.path, plan.protocol == BROADCAST ? client->room : "",
                plan.host, plan.port, key);
    if (subprotocol) text_printf(&request, "Sec-WebSocket-Protocol: %s\r\n", subprotocol);
    text_append(&request, "\r\n", 2);
    memcpy(reserve(client, request.len), request.data, request.len);
    free(request.data);
}

/* ---- what arrives -------------------------------------------------------------------------------------------------- */

/* The slot of `sender` in the client's open-addressing table: its own, or the empty one it would take. */
static Seen *seen_slot(Client *client, uint32_t sender) {
    uint32_t slots = client->seen_cap - 1, i = (sender * 2654435761u) >> 7 & slots;
    while (client->seen[i].bits && client->seen[i].id != sender) i = (i + 1) & slots;
    return &client->seen[i];
}

static Seen *seen_of(Client *client, uint32_t sender) {
    if (2 * (client->seen_count + 1) > client->seen_cap) {
        Seen *old = client->seen;
        uint32_t old_cap = client->seen_cap;
        client->seen_cap = old_cap ? 2 * old_cap : 64;
        client->seen = calloc(client->seen_cap, sizeof(Seen));
        if (!client->seen) fail("out of memory");
        for (uint32_t i = 0; i < old_cap; i++)
            if (old[i].bits) *seen_slot(client, old[i].id) = old[i];
        free(old);
    }
    Seen *seen = seen_slot(client, sender);
    if (!seen->bits) {
        seen->id = sender;
        seen->words = 16;
        seen->bits = calloc(seen->words, sizeof(uint64_t));
        if (!seen->bits) fail("out of memory");
        client->seen_count++;
    }
    return seen;
}

static void count_latency(long long index) {
    if (index >= 0 && index < LATENCY_BINS) {
        bins[index]++;
        return;
    }
    for (size_t i = 0; i < extra_count; i++) {
        if (extra_bins[i].index == index) {
            extra_bins[i].count++;
            return;
        }
    }
    if (extra_count == extra_cap) {
        extra_cap = extra_cap ? 2 * extra_cap : 64;
        extra_bins = grow(extra_bins, extra_cap * sizeof(Bin));
    }
    extra_bins[extra_count++] = (Bin){index, 1};
}

static int json_valid(const char *data, size_t len, const char **why, size_t *at);

/* A message that is not a tick: reported if it is an `error`, or not JSON (BenchClient._on_control). */
static void on_control(const uint8_t *data, size_t len) {
    const char *json = (const char *)data, *end = (const char *)data + len, *why;
    size_t at;
    if (plan.protocol == BINARY) {
        if (!len || data[0] != TAG_JSON) {
            add_error("unreadable message: %s", len ? "unknown tag" : "empty");
            return;
        }
        json++;
    }
    if (!json_valid(json, (size_t)(end - json), &why, &at)) {
        add_error("unreadable message: %s at byte %zu", why, at);
        return;
    }
    if (json_type_is(json, end, "error")) {
        char error[400];
        error_text(json, end, error, sizeof error);
        add_error("%s", error);
    }
}

typedef struct {
    uint32_t sender;
    int has_t;
    double x, t;
} Entry;

static Entry *entries;
static size_t entries_cap;

/* The entries of a tick frame (member id, head x, t), read as binary_tick_poses reads them, into `entries`:
 * their number, or -1 if the frame is truncated. */
static long tick_entries(const uint8_t *data, size_t len) {
    if (len < 16) return -1;
    double tick_t;
    uint16_t count;
    memcpy(&tick_t, data + 6, 8);
    memcpy(&count, data + 14, 2);
    if (count > entries_cap) {
        entries_cap = count;
        entries = grow(entries, entries_cap * sizeof(Entry));
    }
    size_t offset = 16;
    for (uint16_t i = 0; i < count; i++) {
        if (offset + 5 > len) return -1;
        Entry *entry = &entries[i];
        memcpy(&entry->sender, data + offset, 4);
        uint8_t flags = data[offset + 4];
        offset += 5;
        entry->has_t = flags & HAS_T;
        if (entry->has_t) {
            int32_t age;
            if (offset + 4 > len) return -1;
            memcpy(&age, data + offset, 4);
            entry->t = tick_t - age / AGE_SCALE;
            offset += 4;
        }
        if (flags & HEAD_WIDE) {
            if (offset + 8 > len) return -1;
            memcpy(&entry->x, data + offset, 8);
            offset += 24 + 6;
        } else {
            uint16_t low;
            if (offset + 3 > len) return -1;
            memcpy(&low, data + offset, 2);
            entry->x = ((int32_t)(int8_t)data[offset + 2] * 65536 + low) / HEAD_SCALE;
            offset += 9 + 6;
        }
        if (flags & LEFT) offset += (flags & LEFT_WIDE ? 24 : 6) + 6;
        if (flags & RIGHT) offset += (flags & RIGHT_WIDE ? 24 : 6) + 6;
    }
    return count;
}

/* ---- the poses of JSON messages ------------------------------------------------------------------------------- */

/* A strict reader of one JSON text (RFC 8259), for what loader.py decodes with msgspec: a tick's `poses` and a
 * ws-broadcast pose. It walks the grammar, so every key it compares is one it reached as a key at the place
 * expected (a member of the tick object, of a pose, of a head): keys of other sections, such as the free-form
 * `props` of `entities` or the `joints`, are inside values it skips whole, and cannot be taken for a pose's. The
 * messages arrive whole (on_frames reassembles them), so it never resumes; the first fault stops it. */
typedef struct {
    const char *p, *start, *end;
    const char *error; /* the first fault: reported as "unreadable message: ..." */
} Json;

static int json_fault(Json *j, const char *why) {
    if (!j->error) j->error = why;
    return 0;
}

static void json_space(Json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* Consume `c` (after any whitespace) if it is next. */
static int json_take(Json *j, char c) {
    json_space(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return 1;
    }
    return 0;
}

static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The code unit of the 4 hex digits at `p` (of a \u escape), or -1. */
static int hex4(const char *p) {
    int code = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_digit(p[i]);
        if (digit < 0) return -1;
        code = code << 4 | digit;
    }
    return code;
}

/* A string: its raw content (escapes left in) in [*text, *text + *len); `*escaped` if it has any. */
static int json_string_span(Json *j, const char **text, size_t *len, int *escaped) {
    if (!json_take(j, '"')) return json_fault(j, "expected a string");
    *text = j->p;
    *escaped = 0;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            *len = (size_t)(j->p++ - *text);
            return 1;
        }
        if (c < 0x20) return json_fault(j, "a control character in a string");
        if (c == '\\') {
            *escaped = 1;
            if (++j->p >= j->end) break;
            if (*j->p == 'u') {
                if (j->end - j->p < 5) break;
                int code = hex4(j->p + 1);
                if (code < 0) return json_fault(j, "a bad \\u escape");
                j->p += 4;
                if (code >= 0xDC00 && code <= 0xDFFF) return json_fault(j, "a lone surrogate escape");
                if (code >= 0xD800 && code <= 0xDBFF) { /* as msgspec: its low half must follow, escaped */
                    int low = j->end - j->p >= 7 && j->p[1] == '\\' && j->p[2] == 'u' ? hex4(j->p + 3) : -1;
                    if (low < 0xDC00 || low > 0xDFFF) return json_fault(j, "a lone surrogate escape");
                    j->p += 6;
                }
            } else if (!*j->p || !strchr("\"\\/bfnrt", *j->p)) { /* strchr would find the NUL */
                return json_fault(j, "a bad escape");
            }
        }
        j->p++;
    }
    return json_fault(j, "an unterminated string");
}

typedef struct {
    const char *text;
    size_t len;
    int escaped;
} Key; /* a key as read: its raw content */

/* Whether `key` is `word` (ASCII, of `word_len` bytes), escapes undone: msgspec compares the decoded key. */
static int key_equals(const Key *key, const char *word, size_t word_len) {
    const char *text = key->text;
    size_t len = key->len;
    if (!key->escaped) return len == word_len && !memcmp(text, word, len);
    size_t n = 0;
    for (size_t i = 0; i < len; i++, n++) {
        char c = text[i];
        if (c == '\\') { /* well-formed: json_string_span checked it */
            c = text[++i];
            if (c == 'u') {
                int code = hex4(text + i + 1);
                if (code > 0x7F) return 0; /* not ASCII, so not in `word` */
                c = (char)code;
                i += 4;
            } else {
                c = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
            }
        }
        if (n >= word_len || word[n] != c) return 0;
    }
    return n == word_len;
}

#define KEY_IS(key, word) key_equals(key, word, sizeof word - 1) /* `word`: a string literal */

/* A number, by the grammar: its span in [*text, *text + *len) and whether it is an integer (no fraction or
 * exponent); `expected` is the fault when the value is not a number at all. */
static int json_number_span(Json *j, const char **text, size_t *len, int *integer, const char *expected) {
    json_space(j);
    const char *p = j->p, *end = j->end;
    *text = p;
    *integer = 1;
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return json_fault(j, expected);
    }
    if (p < end && *p == '.') {
        *integer = 0;
        if (++p >= end || *p < '0' || *p > '9') return json_fault(j, "a bad number");
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integer = 0;
        if (++p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return json_fault(j, "a bad number");
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    *len = (size_t)(p - *text);
    j->p = p;
    return 1;
}

/* A number's value: strtod on a NUL-terminated copy of its exact span (what follows it in the buffer may be the
 * next frame, or nothing that is ours). */
static int json_double(Json *j, double *value) {
    const char *text;
    size_t len;
    int integer;
    if (!json_number_span(j, &text, &len, &integer, "expected a number")) return 0;
    char copy[JSON_NUMBER_MAX + 1];
    if (len > JSON_NUMBER_MAX) return json_fault(j, "a number too long");
    memcpy(copy, text, len);
    copy[len] = 0;
    *value = strtod(copy, NULL);
    return isfinite(*value) ? 1 : json_fault(j, "a number out of range");
}

/* A number whose value is not needed, checked as msgspec checks a float: finite. Only an exponent or hundreds of
 * digits can take a number out of range, so strtod runs only then. */
static int json_check_double(Json *j) {
    const char *text;
    size_t len;
    int integer;
    if (!json_number_span(j, &text, &len, &integer, "expected a number")) return 0;
    if (!memchr(text, 'e', len) && !memchr(text, 'E', len) && len < 300) return 1;
    double value;
    j->p = text;
    return json_double(j, &value);
}

/* A member id: an integer (msgspec's `int` takes no fraction) that fits the u32 of Shoal's ids. */
static int json_id(Json *j, uint32_t *id) {
    const char *text;
    size_t len;
    int integer;
    if (!json_number_span(j, &text, &len, &integer, "an id that is not a u32")) return 0;
    if (!integer || *text == '-' || len > 10) return json_fault(j, "an id that is not a u32");
    uint64_t value = 0;
    for (size_t i = 0; i < len; i++) value = value * 10 + (uint64_t)(text[i] - '0');
    if (value > UINT32_MAX) return json_fault(j, "an id that is not a u32");
    *id = (uint32_t)value;
    return 1;
}

static int json_literal_of(Json *j, const char *word, size_t len) {
    json_space(j);
    if ((size_t)(j->end - j->p) < len || memcmp(j->p, word, len)) return json_fault(j, "expected a value");
    j->p += len;
    return 1;
}

#define JSON_LITERAL(j, word) json_literal_of(j, word, sizeof word - 1) /* `word`: a string literal */

/* The next member of an object whose `{` is consumed: 1 with its key, positioned at its value; 0 after the `}`
 * or on a fault (j->error). `count` is the members read so far (start at 0). */
static int json_next_key(Json *j, int *count, Key *key) {
    if (json_take(j, '}')) return 0;
    if (*count && !json_take(j, ',')) return json_fault(j, "expected ',' or '}' in an object");
    if (!json_string_span(j, &key->text, &key->len, &key->escaped)) return 0;
    if (!json_take(j, ':')) return json_fault(j, "expected ':' after a key");
    ++*count;
    return 1;
}

/* Whether an element follows in an array whose `[` is consumed: 0 after the `]` or on a fault. */
static int json_next_element(Json *j, int *count) {
    if (json_take(j, ']')) return 0;
    if (*count && !json_take(j, ',')) return json_fault(j, "expected ',' or ']' in an array");
    ++*count;
    return 1;
}

/* Any value, checked and passed over; its keys are not looked at. */
static int json_skip(Json *j, int depth) {
    if (depth > JSON_MAX_DEPTH) return json_fault(j, "JSON nested too deeply");
    json_space(j);
    if (j->p >= j->end) return json_fault(j, "expected a value");
    Key key;
    int count = 0, integer;
    switch (*j->p) {
    case '{':
        j->p++;
        while (json_next_key(j, &count, &key))
            if (!json_skip(j, depth + 1)) return 0;
        return !j->error;
    case '[':
        j->p++;
        while (json_next_element(j, &count))
            if (!json_skip(j, depth + 1)) return 0;
        return !j->error;
    case '"':
        return json_string_span(j, &key.text, &key.len, &key.escaped);
    case 't':
        return JSON_LITERAL(j, "true");
    case 'f':
        return JSON_LITERAL(j, "false");
    case 'n':
        return JSON_LITERAL(j, "null");
    default:
        return json_number_span(j, &key.text, &key.len, &integer, "expected a value");
    }
}

/* Nothing but whitespace after the top-level value. */
static int json_end(Json *j) {
    json_space(j);
    return j->p == j->end ? 1 : json_fault(j, "characters after the JSON value");
}

/* `head` as loader.py's _Head reads it: an object whose `pos` is three numbers; x is the first. */
static int read_head(Json *j, double *x, int depth) {
    if (!json_take(j, '{')) return json_fault(j, "a head that is not an object");
    Key key;
    int count = 0, has_pos = 0;
    while (json_next_key(j, &count, &key)) {
        if (!KEY_IS(&key, "pos")) {
            if (!json_skip(j, depth + 1)) return 0;
            continue;
        }
        if (!json_take(j, '[')) return json_fault(j, "a pos that is not an array");
        int elements = 0;
        while (json_next_element(j, &elements)) {
            if (elements > 3) return json_fault(j, "a pos that is not three numbers");
            if (!(elements == 1 ? json_double(j, x) : json_check_double(j))) return 0;
        }
        if (j->error) return 0;
        if (elements != 3) return json_fault(j, "a pos that is not three numbers");
        has_pos = 1;
    }
    if (j->error) return 0;
    return has_pos ? 1 : json_fault(j, "a head without pos");
}

/* One pose object as loader.py's _Pose reads it: `id` and `head` required, `t` a number, null or absent (then
 * no latency is counted), every other key skipped whatever it holds. A repeated key: the last one counts. */
static int read_pose(Json *j, Entry *entry, int depth) {
    if (!json_take(j, '{')) return json_fault(j, "a pose that is not an object");
    Key key;
    int count = 0, has_id = 0, has_head = 0;
    entry->has_t = 0;
    while (json_next_key(j, &count, &key)) {
        if (KEY_IS(&key, "id")) {
            has_id = json_id(j, &entry->sender);
        } else if (KEY_IS(&key, "head")) {
            has_head = read_head(j, &entry->x, depth + 1);
        } else if (KEY_IS(&key, "t")) {
            json_space(j);
            entry->has_t = j->p < j->end && *j->p == 'n' ? !JSON_LITERAL(j, "null") : json_double(j, &entry->t);
        } else {
            json_skip(j, depth + 1);
        }
        if (j->error) return 0;
    }
    if (j->error) return 0;
    if (!has_id) return json_fault(j, "a pose without id");
    return has_head ? 1 : json_fault(j, "a pose without head");
}

static void entries_reserve(size_t count) {
    if (count <= entries_cap) return;
    entries_cap = count < 64 ? 64 : 2 * count;
    entries = grow(entries, entries_cap * sizeof(Entry));
}

/* The poses of a JSON tick (BenchClient's json_tick_poses: the top-level `poses`, required; the other members,
 * `seq`, `t`, `entities`, `removed`, `full`, `joints` or any other, skipped) into `entries`: their number, or -1
 * with j->error set. All or nothing, as msgspec decodes the whole tick before a pose is counted. */
static long read_tick(Json *j) {
    if (!json_take(j, '{')) {
        json_fault(j, "a tick that is not an object");
        return -1;
    }
    Key key;
    int members = 0, has_poses = 0;
    long count = 0;
    while (json_next_key(j, &members, &key)) {
        if (!KEY_IS(&key, "poses")) {
            if (!json_skip(j, 2)) return -1;
            continue;
        }
        if (!json_take(j, '[')) {
            json_fault(j, "poses that are not an array");
            return -1;
        }
        int elements = 0;
        count = 0;
        has_poses = 1;
        while (json_next_element(j, &elements)) {
            entries_reserve((size_t)count + 1);
            if (!read_pose(j, &entries[count++], 3)) return -1;
        }
        if (j->error) return -1;
    }
    if (j->error || !json_end(j)) return -1;
    if (!has_poses) {
        json_fault(j, "a tick without poses");
        return -1;
    }
    return count;
}

/* A ws-broadcast message: one pose, with its sender's index as id (BenchClient's broadcast_poses). */
static long read_broadcast_pose(Json *j) {
    entries_reserve(1);
    if (!read_pose(j, &entries[0], 1) || !json_end(j)) return -1;
    return 1;
}

/* Whether [data, data + len) is one well-formed JSON value; if not, why and where. */
static int json_valid(const char *data, size_t len, const char **why, size_t *at) {
    Json j = {data, data, data + len, NULL};
    if (json_skip(&j, 1) && json_end(&j)) return 1;
    *why = j.error;
    *at = (size_t)(j.p - j.start);
    return 0;
}

/* ---- Colyseus 0.16 ---------------------------------------------------------------------------------------------- */

/* A msgpack string header at data[*at] of a `size`-byte message (fixstr, str 8, str 16 or str 32), its length's
 * bytes `big_endian` as msgpack has them (a message, as msgpackr packs it) or little-endian as @colyseus/schema's
 * encode.string writes them (a message's type, an error's text): 1 with the string in [*text, *text + *len) and *at
 * past it; 0 if there is no string header there or the string overruns the message. */
static int msgpack_string(const uint8_t *data, size_t size, size_t *at, int big_endian, const uint8_t **text,
                          size_t *len) {
    if (*at >= size) return 0;
    uint8_t prefix = data[(*at)++];
    size_t bytes = prefix == 0xd9 ? 1 : prefix == 0xda ? 2 : prefix == 0xdb ? 4 : 0;
    if (!bytes && (prefix & 0xe0) != 0xa0) return 0;
    if (size - *at < bytes) return 0;
    uint64_t length = bytes ? 0 : prefix & 0x1f;
    for (size_t i = 0; i < bytes; i++) length |= (uint64_t)data[*at + i] << 8 * (big_endian ? bytes - 1 - i : i);
    *at += bytes;
    if (size - *at < length) return 0;
    *text = data + *at;
    *len = (size_t)length;
    *at += (size_t)length;
    return 1;
}

/* An unsigned integer at data[*at] as @colyseus/schema's encode.number writes one (positive fixint, or uint 8/16/32
 * little-endian): 1 with *value and *at past it, 0 if there is none. */
static int schema_unsigned(const uint8_t *data, size_t size, size_t *at, uint32_t *value) {
    if (*at >= size) return 0;
    uint8_t prefix = data[(*at)++];
    size_t bytes = prefix == 0xcc ? 1 : prefix == 0xcd ? 2 : prefix == 0xce ? 4 : 0;
    if (!bytes) {
        *value = prefix;
        return prefix < 0x80;
    }
    if (size - *at < bytes) return 0;
    *value = 0;
    for (size_t i = 0; i < bytes; i++) *value |= (uint32_t)data[*at + i] << 8 * i;
    *at += bytes;
    return 1;
}

/* An ERROR message as loader.py's colyseus_error words it, "CODE: MESSAGE" (its code, then its text if any): 0 if
 * it cannot be read. */
static int colyseus_error_text(const uint8_t *data, size_t len, char *out, size_t size) {
    size_t at = 1, text_len = 0;
    uint32_t code;
    const uint8_t *text = NULL;
    if (!schema_unsigned(data, len, &at, &code)) return 0;
    if (at < len && !msgpack_string(data, len, &at, 0, &text, &text_len)) return 0;
    snprintf(out, size, "%u: %.*s", code, (int)text_len, text ? (const char *)text : "");
    return 1;
}

/* A Colyseus message that is no pose (BenchClient._on_control, colyseus_error): an ERROR or a LEAVE_ROOM is
 * reported; JOIN_ROOM, ROOM_STATE, ROOM_STATE_PATCH and ROOM_DATA_BYTES pass; anything else is unreadable. */
static void on_colyseus_control(const uint8_t *data, size_t len) {
    char error[400];
    if (!len) {
        add_error("unreadable message: an empty message");
        return;
    }
    switch (data[0]) {
    case COLYSEUS_ERROR:
        if (colyseus_error_text(data, len, error, sizeof error)) add_error("%s", error);
        else add_error("unreadable message: an ERROR without a code");
        return;
    case COLYSEUS_LEAVE_ROOM:
        add_error("%s", COLYSEUS_LEAVE_TEXT);
        return;
    case COLYSEUS_JOIN_ROOM:
    case COLYSEUS_ROOM_STATE:
    case COLYSEUS_ROOM_STATE_PATCH:
    case COLYSEUS_ROOM_DATA_BYTES:
        return;
    default:
        add_error("unreadable message: an unknown Colyseus message code %d", data[0]);
    }
}

/* The pose text of a ROOM_DATA message (loader.py's colyseus_poses): its type the string "pose", its message one
 * msgpack string. 0, with the fault reported, for any other ROOM_DATA. */
static int colyseus_pose_text(const uint8_t *data, size_t len, const uint8_t **text, size_t *text_len) {
    size_t at = 1, type_len;
    const uint8_t *type;
    if (!msgpack_string(data, len, &at, 0, &type, &type_len) || type_len != sizeof COLYSEUS_POSE_TYPE - 2 ||
        memcmp(type, COLYSEUS_POSE_TYPE + 1, type_len)) {
        add_error("unreadable message: a ROOM_DATA message whose type is not \"pose\"");
        return 0;
    }
    if (!msgpack_string(data, len, &at, 1, text, text_len) || at != len) {
        add_error("unreadable message: a ROOM_DATA message whose message is not one msgpack string");
        return 0;
    }
    return 1;
}

/* Write, just before the `len`-byte pose text at `text`, what makes it a ROOM_DATA message of type "pose": the code,
 * the type, and the text's msgpack string header (the shortest, as msgspec writes it for loader.py); return where the
 * message starts. `text` has COLYSEUS_POSE_HEAD bytes of room before it, and `len` is below 65,536. */
static uint8_t *colyseus_pose_head(uint8_t *text, size_t len) {
    uint8_t *p = text;
    if (len < 32) {
        *--p = (uint8_t)(0xa0 | len);
    } else if (len < 256) {
        *--p = (uint8_t)len;
        *--p = 0xd9;
    } else {
        *--p = (uint8_t)len;
        *--p = (uint8_t)(len >> 8);
        *--p = 0xda;
    }
    p -= sizeof COLYSEUS_POSE_TYPE - 1;
    memcpy(p, COLYSEUS_POSE_TYPE, sizeof COLYSEUS_POSE_TYPE - 1);
    *--p = COLYSEUS_ROOM_DATA;
    return p;
}

/* Count the poses of one message from other members, once per sender and sequence number, and their latency
 * when received inside the window (BenchClient.record). */
static void record(Client *client, const uint8_t *data, size_t len, double received_at) {
    long count;
    Json j = {(const char *)data, (const char *)data, (const char *)data + len, NULL};
    if (plan.protocol == BINARY) {
        if (!len || data[0] != TAG_TICK) {
            on_control(data, len);
            return;
        }
        count = tick_entries(data, len);
        if (count < 0) j.error = "truncated tick";
    } else if (plan.protocol == JSON) {
        if (len < sizeof TICK_PREFIX - 1 || memcmp(data, TICK_PREFIX, sizeof TICK_PREFIX - 1)) {
            on_control(data, len);
            return;
        }
        count = read_tick(&j);
    } else if (plan.protocol == COLYSEUS) {
        const uint8_t *text;
        size_t text_len;
        if (!len || data[0] != COLYSEUS_ROOM_DATA) {
            on_colyseus_control(data, len);
            return;
        }
        if (!colyseus_pose_text(data, len, &text, &text_len)) return;
        j = (Json){(const char *)text, (const char *)text, (const char *)text + text_len, NULL};
        count = read_broadcast_pose(&j);
    } else {
        count = read_broadcast_pose(&j);
    }
    if (count < 0) {
        if (plan.protocol == BINARY) add_error("unreadable message: %s", j.error);
        else add_error("unreadable message: %s at byte %td", j.error, j.p - j.start);
        return;
    }
    int in_window = window_start <= received_at && received_at < window_end;
    double received_ms = received_at * 1000.0;
    for (long i = 0; i < count; i++) {
        Entry *entry = &entries[i];
        if (entry->sender == client->id) continue;
        double seq = nearbyint(entry->x * 1000.0); /* Python's round(): half to even */
        if (!(seq >= 0 && seq < MAX_SEQ)) {
            add_error("unreadable message: sequence number %.0f", seq);
            continue;
        }
        uint64_t bit = (uint64_t)seq;
        Seen *seen = seen_of(client, entry->sender);
        if (bit / 64 >= seen->words) {
            uint32_t words = seen->words;
            while (bit / 64 >= words) words *= 2;
            seen->bits = grow(seen->bits, words * sizeof(uint64_t));
            memset(seen->bits + seen->words, 0, (words - seen->words) * sizeof(uint64_t));
            seen->words = words;
        }
        uint64_t *word = &seen->bits[bit / 64], mask = 1ULL << (bit % 64);
        if (*word & mask) {
            duplicates++; /* full state resent after a skipped tick, or a far-tier refresh */
            continue;
        }
        *word |= mask;
        if (in_window) {
            deliveries++;
            if (entry->has_t) count_latency((long long)((received_ms - entry->t) / plan.bin_ms));
        }
    }
}

static void became_ready(Client *client) {
    client->state = READY;
    ready_count++;
    open_count++;
    in_flight--;
}

/* A message before a Colyseus client joined: the server's JOIN_ROOM (its reconnection token and serializer follow,
 * unused here as by a client without state), confirmed with a JOIN_ROOM of one byte as colyseus.js 0.16 does; an
 * ERROR ends the run. Anything else waits. */
static void on_colyseus_join(Client *client, const uint8_t *data, size_t len) {
    static const uint8_t join_room = COLYSEUS_JOIN_ROOM;
    char error[400];
    if (len && data[0] == COLYSEUS_ERROR) {
        if (!colyseus_error_text(data, len, error, sizeof error))
            snprintf(error, sizeof error, "an ERROR without a code");
        fail("client %d: the join was refused: %s", client->index, error);
    }
    if (!len || data[0] != COLYSEUS_JOIN_ROOM) return;
    send_frame(client, 0x2, &join_room, 1);
    became_ready(client);
}

/* One whole message (text or binary) on a client's connection. */
static void on_message(Client *client, const uint8_t *data, size_t len, double received_at) {
    if (client->state == READY) {
        record(client, data, len, received_at);
        return;
    }
    if (plan.protocol == COLYSEUS) {
        on_colyseus_join(client, data, len);
        return;
    }
    const char *json = (const char *)data, *end = (const char *)data + len;
    if (plan.protocol == BINARY) {
        if (!len || data[0] != TAG_JSON) return; /* a tick before `joined` */
        json++;
    }
    const char *answer = client->state == GREETING ? "welcome" : "joined";
    if (json_type_is(json, end, "error")) {
        char error[400];
        error_text(json, end, error, sizeof error);
        fail("client %d: %s refused: %s", client->index, answer, error);
    }
    if (!json_type_is(json, end, answer)) return;
    if (client->state == GREETING) {
        const char *id = json_value(json, end, "id");
        if (!id) fail("client %d: a welcome without an id", client->index);
        client->id = (uint32_t)strtoul(id, NULL, 10);
        Text join = {0};
        text_printf(&join, "{\"type\": \"join\", \"room\": ");
        text_json_string(&join, client->room, strlen(client->room));
        text_append(&join, "}", 1);
        client->state = JOINING;
        send_json(client, &join);
        free(join.data);
    } else {
        became_ready(client);
    }
}

/* The value of the header `name` (with its colon; any case) if the response line at `line` is one, else NULL: past
 * the spaces and tabs after the colon, `*len` characters to the end of the line but its trailing spaces and tabs. */
static const char *header_value(const char *line, const char *name, int *len) {
    size_t name_len = strlen(name);
    if (strncasecmp(line, name, name_len)) return NULL;
    const char *value = line + name_len + strspn(line + name_len, " \t");
    *len = (int)strcspn(value, "\r");
    while (*len && (value[*len - 1] == ' ' || value[*len - 1] == '\t')) --*len;
    return value;
}

/* The response to the upgrade request, once its head is complete: 1 if the connection is now a WebSocket. */
static int on_upgrade(Client *client) {
    char *head = (char *)client->in, *end = memmem(head, client->in_len, "\r\n\r\n", 4);
    if (!end) {
        if (client->in_len > 16384) fail("client %d: the upgrade response has no end", client->index);
        return 0;
    }
    *end = 0;
    if (strncmp(head, "HTTP/1.1 101", 12) != 0)
        fail("client %d: the server refused the upgrade: %.*s", client->index, (int)strcspn(head, "\r"), head);
    const char *protocol = "", *accept = "", *value;
    int protocol_len = 0, accept_len = 0, accepts = 0, len;
    for (char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if ((value = header_value(line + 2, "Sec-WebSocket-Protocol:", &len))) protocol = value, protocol_len = len;
        if ((value = header_value(line + 2, "Sec-WebSocket-Accept:", &len)))
            accept = value, accept_len = len, accepts++;
    }
    if (accepts != 1)
        fail("client %d: the upgrade response has %d Sec-WebSocket-Accept headers, not one", client->index, accepts);
    if (accept_len != (int)strlen(client->accept) || strncmp(accept, client->accept, (size_t)accept_len))
        fail("client %d: the server answered Sec-WebSocket-Accept '%.*s', not '%s'", client->index, accept_len, accept,
             client->accept);
    const char *asked = subprotocol_of(plan.protocol);
    if (asked && (protocol_len != (int)strlen(asked) || strncmp(protocol, asked, strlen(asked))))
        fail("client %d: the server answered subprotocol '%.*s' to '%s'", client->index, protocol_len, protocol,
             asked);
    size_t used = (size_t)(end + 4 - head);
    memmove(client->in, client->in + used, client->in_len - used);
    client->in_len -= used;
    if (plan.protocol == BROADCAST) { /* a relay without handshake messages: the upgrade is the whole join */
        became_ready(client);
        return 1;
    }
    if (plan.protocol == COLYSEUS) { /* the server speaks first: JOIN_ROOM */
        client->state = JOINING;
        return 1;
    }
    client->state = GREETING;
    Text hello = {0};
    text_printf(&hello, "{\"type\": \"hello\", \"name\": \"bench %d\"}", client->index);
    send_json(client, &hello);
    free(hello.data);
    return 1;
}

/* The body of a chunked answer in [p, end) (RFC 9112 7.1), its chunks joined in `out`: 1 once whole, 0 while a part is
 * missing, -1 if it is malformed. Chunk extensions are skipped; trailers are not expected. */
static int dechunk(const char *p, const char *end, Text *out) {
    for (;;) {
        const char *line_end = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!line_end) return 0;
        if (hex_digit(*p) < 0) return -1;
        unsigned long size = strtoul(p, NULL, 16); /* stops at the line's end at the latest: '\r' is no digit */
        if (size > SEAT_ANSWER_MAX) return -1;
        p = line_end + 2;
        if ((size_t)(end - p) < size + 2) return 0;
        if (memcmp(p + size, "\r\n", 2)) return -1;
        if (!size) return 1;
        text_append(out, p, size);
        p += size + 2;
    }
}

/* The string under `key` of the JSON object in [s, end) into `out` (of `size` bytes): an id of Colyseus's (nanoid's
 * letters, digits, '_' and '-'), which goes into the room's URL as it is; anything else ends the run. */
static void seat_id(const Client *client, const char *s, const char *end, const char *key, char *out, size_t size) {
    static const char id_characters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    const char *value = json_value(s, end, key);
    if (value && *value == '"') json_string(s, end, key, out, size);
    if (!value || *value != '"' || !out[0] || strspn(out, id_characters) != strlen(out) || strlen(out) + 1 >= size)
        fail("client %d: the seat answer has no %s made of letters, digits, '_' and '-'", client->index, key);
}

/* The answer to a Colyseus client's seat request, once whole (its body delimited by Content-Length or chunked):
 * {"room": {"processId": ..., "roomId": ..., ...}, "sessionId": ...}, whose ids make the path of the room's
 * WebSocket, which is then opened on a new connection; an answer with an `error` ends the run. */
static void on_seat_answer(Client *client) {
    char *head = (char *)client->in, *head_end = memmem(head, client->in_len, "\r\n\r\n", 4);
    const char *end = head + client->in_len, *value;
    if (client->in_len > SEAT_ANSWER_MAX)
        fail("client %d: the seat answer is longer than %d bytes", client->index, SEAT_ANSWER_MAX);
    if (!head_end) return;
    if (strncmp(head, "HTTP/1.1 200", 12) && strncmp(head, "HTTP/1.0 200", 12))
        fail("client %d: the server refused the seat request: %.*s", client->index, (int)strcspn(head, "\r"), head);
    long content_length = -1;
    int chunked = 0, len;
    for (char *line = memmem(head, (size_t)(head_end - head), "\r\n", 2); line && line < head_end;
         line = memmem(line + 2, (size_t)(head_end + 2 - (line + 2)), "\r\n", 2)) {
        if ((value = header_value(line + 2, "Content-Length:", &len))) content_length = strtol(value, NULL, 10);
        if ((value = header_value(line + 2, "Transfer-Encoding:", &len)))
            chunked = len == 7 && !strncasecmp(value, "chunked", 7);
    }
    const char *body = head_end + 4;
    Text chunks = {0};
    size_t body_len = (size_t)(end - body);
    if (chunked) {
        int whole = dechunk(body, end, &chunks);
        if (whole < 0) fail("client %d: the seat answer's chunks are malformed", client->index);
        if (!whole) {
            free(chunks.data);
            return;
        }
        body = chunks.data ? chunks.data : "";
        body_len = chunks.len;
    } else if (content_length < 0) {
        fail("client %d: the seat answer has neither Content-Length nor chunked Transfer-Encoding", client->index);
    } else if (body_len < (size_t)content_length) {
        return;
    } else {
        body_len = (size_t)content_length;
    }
    const char *body_end = body + body_len, *why;
    size_t at;
    if (!json_valid(body, body_len, &why, &at))
        fail("client %d: the seat answer is no JSON: %s at byte %zu", client->index, why, at);
    if (json_value(body, body_end, "error"))
        fail("client %d: the seat was refused: %.*s", client->index, (int)body_len, body);
    const char *room = json_value(body, body_end, "room");
    if (!room || *room != '{') fail("client %d: the seat answer has no room", client->index);
    Json room_json = {room, room, body_end, NULL};
    json_skip(&room_json, 1); /* to the room's end: what follows is not the room's */
    char process_id[64], room_id[64], session_id[64];
    seat_id(client, room, room_json.p, "processId", process_id, sizeof process_id);
    seat_id(client, room, room_json.p, "roomId", room_id, sizeof room_id);
    seat_id(client, body, body_end, "sessionId", session_id, sizeof session_id);
    snprintf(client->seat, sizeof client->seat, "/%s/%s?sessionId=%s", process_id, room_id, session_id);
    free(chunks.data);
    close_connection(client);
    client->in_len = client->out_len = client->out_sent = 0;
    open_connection(client);
}

/* Every complete frame in the client's input buffer; a partial one stays for the next read. */
static void on_frames(Client *client, double received_at) {
    size_t offset = 0;
    while (client->state != CLOSED) {
        uint8_t *frame = client->in + offset;
        size_t available = client->in_len - offset, head = 2;
        if (available < 2) break;
        int short_len = frame[1] & 0x7F, masked = frame[1] & 0x80;
        if (short_len == 126) head = 4;
        if (short_len == 127) head = 10;
        if (available < head + (masked ? 4 : 0)) break;
        uint64_t len = (uint64_t)short_len;
        if (short_len == 126) {
            len = (uint64_t)frame[2] << 8 | frame[3];
        } else if (short_len == 127) {
            len = 0;
            for (int i = 2; i < 10; i++) len = len << 8 | frame[i];
        }
        if (len > MAX_MESSAGE) fail("client %d: a %llu-byte frame", client->index, (unsigned long long)len);
        size_t total = head + (masked ? 4 : 0) + (size_t)len;
        if (available < total) {
            if (client->in_cap < total + READ_CHUNK) { /* room for the rest of a large frame */
                client->in_cap = total + READ_CHUNK;
                client->in = grow(client->in, client->in_cap);
            }
            break;
        }
        uint8_t *payload = frame + head + (masked ? 4 : 0);
        if (masked) /* servers do not mask; unmask anyway */
            for (size_t i = 0; i < len; i++) payload[i] ^= frame[head + (i & 3)];
        offset += total;
        int opcode = frame[0] & 0x0F;
        if (!(frame[0] & 0x80) || opcode == 0x0) {
            add_error("websocket error: fragmented messages are not supported");
        } else if (opcode == 0x1 || opcode == 0x2) {
            on_message(client, payload, (size_t)len, received_at);
        } else if (opcode == 0x8) {
            int code = len >= 2 ? payload[0] << 8 | payload[1] : 1005;
            if (client->state != READY)
                fail("client %d: connection ended before it joined: CLOSE %d", client->index, code);
            if (!client->closing) send_close(client, code);
            drop(client, code);
        } else if (opcode == 0x9) {
            send_frame(client, 0xA, payload, (size_t)len);
        }
    }
    if (client->state == CLOSED) return;
    memmove(client->in, client->in + offset, client->in_len - offset);
    client->in_len -= offset;
}

/* Read what the connection has and handle it: the seat answer, the upgrade's response, frames. Again while OpenSSL
 * holds input of a TLS connection (input_held), which no epoll event would announce. */
static void on_readable(Client *client) {
    do {
        if (client->in_cap - client->in_len < READ_CHUNK / 4) {
            client->in_cap = client->in_cap ? 2 * client->in_cap : READ_CHUNK;
            client->in = grow(client->in, client->in_cap);
        }
        ssize_t got = receive_some(client, client->in + client->in_len, client->in_cap - client->in_len);
        double received_at = wall();
        if (got < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                if (client->state != READY) fail("client %d: %s", client->index, strerror(errno));
                drop(client, 1006);
            }
            return;
        }
        if (got == 0) {
            if (client->state == MATCHMAKING)
                fail("client %d: the server closed the seat request's connection before its whole answer",
                     client->index);
            drop(client, 1000); /* as aiohttp reports a connection closed without a close frame */
            return;
        }
        client->in_len += (size_t)got;
        if (client->state == MATCHMAKING) {
            on_seat_answer(client); /* which opens the room's connection once the answer is whole */
            continue;
        }
        if (client->state == UPGRADING && !on_upgrade(client)) continue;
        on_frames(client, received_at);
    } while (client->state != CLOSED && input_held(client));
}

static void on_event(Client *client, uint32_t events) {
    if (client->state == CLOSED) return;
    if (client->state == CONNECTING) {
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(client->fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error) fail("client %d: cannot connect to %s:%s: %s", client->index, plan.host, plan.port, strerror(error));
        if (!(events & EPOLLOUT)) return;
        client->state = HANDSHAKING;
    }
    if (client->state == HANDSHAKING) {
        if (!handshake(client)) return;
        client->state = plan.protocol == COLYSEUS && !client->seat[0] ? MATCHMAKING : UPGRADING;
        events |= EPOLLOUT; /* the first request waits in the output buffer */
    }
    if (events & EPOLLOUT || (events & EPOLLIN && client->write_waits_in)) flush(client);
    if (client->state != CLOSED && (events & (EPOLLIN | EPOLLHUP | EPOLLERR) || client->read_waits_out))
        on_readable(client);
}

/* ---- the loop ----------------------------------------------------------------------------------------------------- */

/* Wait for events until `until` (wall clock) at the latest, and handle them. */
static void poll_once(double until, int stdin_watched, int *stdin_ready) {
    static struct epoll_event events[EVENTS_PER_POLL];
    double wait = until - wall();
    int timeout = wait <= 0 ? 0 : (int)ceil(wait * 1000.0);
    int count = epoll_wait(poller, events, EVENTS_PER_POLL, timeout);
    if (count < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < count; i++) {
        if (events[i].data.u32 == STDIN_ID) {
            if (stdin_watched) *stdin_ready = 1;
            continue;
        }
        on_event(&clients[events[i].data.u32], events[i].events);
    }
}

/* Read what stdin has (it is readable): 1 when a whole line is buffered, 0 if not yet, -1 on EOF. */
static int poll_stdin_line(void) {
    if (memchr(stdin_buffer, '\n', stdin_len)) return 1;
    if (stdin_len == sizeof stdin_buffer - 1) fail("an order line is too long");
    ssize_t got = read(0, stdin_buffer + stdin_len, sizeof stdin_buffer - 1 - stdin_len);
    if (got < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (got == 0) return -1;
    stdin_len += (size_t)got;
    return memchr(stdin_buffer, '\n', stdin_len) ? 1 : 0;
}

static void connect_all(void) {
    double deadline = monotonic() + plan.ready_timeout;
    int next = 0;
    while (ready_count < plan.count) {
        while (in_flight < CONNECT_CONCURRENCY && next < plan.count) {
            open_connection(&clients[next++]);
            in_flight++;
        }
        if (monotonic() >= deadline)
            fail("%d of %d clients joined within the ready timeout (%g s)", ready_count, plan.count,
                 plan.ready_timeout);
        poll_once(wall() + (deadline - monotonic()), 0, NULL);
    }
}

static void emit_ready(void) {
    Text line = {0};
    text_printf(&line, "{\"ready\": true, \"ids\": [");
    for (int i = 0; i < plan.count; i++) text_printf(&line, i ? ", %u" : "%u", clients[i].id);
    text_printf(&line, "]}\n");
    write_all(1, line.data, line.len);
    free(line.data);
}

/* Serve the connections until stdin has a whole line (1) or ends (0). */
static int wait_for_order(void) {
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = STDIN_ID};
    epoll_ctl(poller, EPOLL_CTL_ADD, 0, &event);
    int state = 0;
    while (!state) {
        int readable = 0;
        if (!memchr(stdin_buffer, '\n', stdin_len)) poll_once(wall() + 1.0, 1, &readable);
        if (readable || memchr(stdin_buffer, '\n', stdin_len)) state = poll_stdin_line();
    }
    epoll_ctl(poller, EPOLL_CTL_DEL, 0, NULL);
    return state > 0 && buffered_line();
}

static int heap_before(uint32_t a, uint32_t b) { return clients[a].next_at < clients[b].next_at; }

static void heap_push(uint32_t client) {
    int i = heap_count++;
    heap[i] = client;
    while (i > 0 && heap_before(heap[i], heap[(i - 1) / 2])) {
        uint32_t parent = heap[(i - 1) / 2];
        heap[(i - 1) / 2] = heap[i];
        heap[i] = parent;
        i = (i - 1) / 2;
    }
}

static uint32_t heap_pop(void) {
    uint32_t top = heap[0];
    heap[0] = heap[--heap_count];
    for (int i = 0;;) {
        int smallest = i, left = 2 * i + 1, right = left + 1;
        if (left < heap_count && heap_before(heap[left], heap[smallest])) smallest = left;
        if (right < heap_count && heap_before(heap[right], heap[smallest])) smallest = right;
        if (smallest == i) break;
        uint32_t swap = heap[i];
        heap[i] = heap[smallest];
        heap[smallest] = swap;
        i = smallest;
    }
    return top;
}

/* This client's next pose, with `t` (ms) and the head's x (seq / 1000 m) in it (BenchClient.pose_frame): binary
 * patches the template (x in 0.1 mm steps); the others format loader.py's text on the stack, no allocation. */
static void send_pose(Client *client, double now) {
    double t = now * 1000.0, x = client->seq / 1000.0;
    if (plan.protocol != BINARY) {
        uint8_t message[COLYSEUS_POSE_HEAD + POSE_TEXT_MAX]; /* the text, with room for Colyseus's head before it */
        char *text = (char *)message + COLYSEUS_POSE_HEAD;
        int len = plan.protocol == JSON
                      ? snprintf(text, POSE_TEXT_MAX, JSON_POSE, x, client->z_value, t)
                      : snprintf(text, POSE_TEXT_MAX, BROADCAST_POSE, client->index, x, client->z_value, t);
        if (len < 0 || len >= POSE_TEXT_MAX)
            fail("client %d: a pose longer than %d bytes", client->index, POSE_TEXT_MAX);
        if (plan.protocol != COLYSEUS) {
            send_frame(client, 0x1, (const uint8_t *)text, (size_t)len);
            return;
        }
        uint8_t *start = colyseus_pose_head((uint8_t *)text, (size_t)len);
        send_frame(client, 0x2, start, (size_t)((uint8_t *)text + len - start));
        return;
    }
    int32_t steps = (int32_t)floor(x * HEAD_SCALE + 0.5);
    uint16_t low = (uint16_t)(steps & 0xFFFF);
    memcpy(client->pose + POSE_T_OFFSET, &t, 8);
    memcpy(client->pose + POSE_X_OFFSET, &low, 2);
    client->pose[POSE_X_OFFSET + 2] = (uint8_t)(steps >> 16);
    send_frame(client, 0x2, client->pose, client->pose_len);
}

/* Send every pose that is due (BenchClient.send_poses: no catching up, a client late by a period skips ahead). */
static void send_due(double period) {
    while (heap_count && clients[heap[0]].next_at <= wall()) {
        Client *client = &clients[heap_pop()];
        double now = wall();
        if (client->state != READY || now >= window_end) continue;
        client->seq++;
        if (now >= window_start) {
            if (!client->first_seq) client->first_seq = client->seq;
            client->last_seq = client->seq;
        }
        send_pose(client, now);
        client->next_at += period;
        if (client->next_at < now - period) client->next_at = now + period;
        if (client->next_at < window_end && client->state == READY) heap_push((uint32_t)(client - clients));
    }
}

/* Stream poses over the window, read until `drain` seconds after it, and return the CPU used in the window. */
static double run_window(void) {
    double period = 1.0 / plan.hz, go = wall(), stop_at = window_end + plan.drain;
    double cpu_at_start = -1, cpu_at_end = -1;
    alarm((unsigned)fmax(stop_at - go, 0.0) + HARD_MARGIN_S);
    heap = grow(NULL, (size_t)plan.count * sizeof(uint32_t));
    for (int i = 0; i < plan.count; i++) {
        Client *client = &clients[i];
        client->next_at = go + (double)(random_next() >> 11) / 9007199254740992.0 * period;
        if (client->state == READY && client->next_at < window_end) heap_push((uint32_t)i);
    }
    for (;;) {
        double now = wall();
        if (cpu_at_start < 0 && now >= window_start) cpu_at_start = cpu_seconds();
        if (cpu_at_end < 0 && now >= window_end) cpu_at_end = cpu_seconds();
        if (now >= stop_at || !open_count) break;
        send_due(period);
        double until = stop_at;
        if (heap_count && clients[heap[0]].next_at < until) until = clients[heap[0]].next_at;
        if (cpu_at_start < 0 && window_start < until) until = window_start;
        if (cpu_at_end < 0 && window_end < until) until = window_end;
        poll_once(until, 0, NULL);
    }
    if (cpu_at_end < 0) cpu_at_end = cpu_seconds();
    return cpu_at_end - (cpu_at_start < 0 ? 0.0 : cpu_at_start);
}

/* Send a close frame on every open connection and wait (at most CLOSE_TIMEOUT_S) for the server to close them. */
static void close_all(void) {
    for (int i = 0; i < plan.count; i++) {
        Client *client = &clients[i];
        if (client->state != READY) continue;
        client->closing = 1;
        send_close(client, 1000);
    }
    double deadline = wall() + CLOSE_TIMEOUT_S;
    while (open_count && wall() < deadline) poll_once(deadline, 0, NULL);
    for (int i = 0; i < plan.count; i++)
        if (clients[i].state == READY) close_connection(&clients[i]);
}

static void emit_result(double cpu_s) {
    Text out = {0};
    text_printf(&out, "{\"result\": {\"cpu_s\": %.6f, \"deliveries\": %llu, \"duplicates\": %llu, \"latency_bins\": {",
                cpu_s, deliveries, duplicates);
    int first = 1;
    for (long i = 0; i < LATENCY_BINS; i++) {
        if (!bins[i]) continue;
        text_printf(&out, first ? "\"%ld\": %u" : ", \"%ld\": %u", i, bins[i]);
        first = 0;
    }
    for (size_t i = 0; i < extra_count; i++) {
        text_printf(&out, first ? "\"%lld\": %llu" : ", \"%lld\": %llu", extra_bins[i].index, extra_bins[i].count);
        first = 0;
    }
    text_printf(&out, "}, \"senders\": {");
    for (int i = 0; i < plan.count; i++) {
        Client *client = &clients[i];
        text_printf(&out, i ? ", \"%u\": [" : "\"%u\": [", client->id);
        text_json_string(&out, client->room, strlen(client->room));
        if (client->first_seq) text_printf(&out, ", %ld, %ld]", client->first_seq, client->last_seq);
        else text_printf(&out, ", null, null]");
    }
    text_printf(&out, "}, \"receivers\": {");
    for (int i = 0; i < plan.count; i++) {
        Client *client = &clients[i];
        text_printf(&out, i ? ", \"%u\": [" : "\"%u\": [", client->id);
        text_json_string(&out, client->room, strlen(client->room));
        text_printf(&out, ", {");
        int first_sender = 1;
        for (uint32_t s = 0; s < client->seen_cap; s++) {
            Seen *seen = &client->seen[s];
            if (!seen->bits) continue;
            text_printf(&out, first_sender ? "\"%u\": \"0x" : ", \"%u\": \"0x", seen->id);
            first_sender = 0;
            int top = (int)seen->words - 1;
            while (top > 0 && !seen->bits[top]) top--;
            text_printf(&out, "%llx", (unsigned long long)seen->bits[top]); /* as Python's hex(): no leading zeros */
            for (int w = top - 1; w >= 0; w--) text_printf(&out, "%016llx", (unsigned long long)seen->bits[w]);
            text_append(&out, "\"", 1);
        }
        text_printf(&out, "}]");
    }
    text_printf(&out, "}, \"positions\": {");
    for (int i = 0; i < plan.count; i++) text_printf(&out, i ? ", \"%u\": %s" : "\"%u\": %s", clients[i].id, clients[i].z);
    text_printf(&out, "}, \"closed\": {");
    first = 1;
    for (int i = 0; i < plan.count; i++) {
        if (clients[i].close_code < 0) continue;
        text_printf(&out, first ? "\"%u\": %d" : ", \"%u\": %d", clients[i].id, clients[i].close_code);
        first = 0;
    }
    if (errors_dropped) add_error("... and %d more errors", errors_dropped);
    text_printf(&out, "}, \"errors\": [%s]}}\n", errors.data ? errors.data : "");
    write_all(1, out.data, out.len);
    free(out.data);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    struct rlimit files;
    if (!getrlimit(RLIMIT_NOFILE, &files)) { /* a loader may hold thousands of connections */
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    struct timespec seed;
    clock_gettime(CLOCK_REALTIME, &seed);
    random_state = ((uint64_t)seed.tv_nsec << 20 ^ (uint64_t)seed.tv_sec ^ (uint64_t)getpid() << 40) | 1;

    char *line;
    if (!read_stdin_line(&line)) fail("no plan on stdin");
    read_settings(line);
    consume_stdin_line();
#ifdef SHOAL_LOADER_TLS
    if (plan.tls) tls_setup();
#else
    if (plan.tls)
        fail("this build speaks no TLS (built without -DSHOAL_LOADER_TLS): it cannot connect to wss://%s:%s; build it "
             "with OpenSSL's headers installed (Debian: libssl-dev), or use --loader python",
             plan.host, plan.port);
#endif
    alarm((unsigned)plan.ready_timeout + HARD_MARGIN_S);
    clients = calloc((size_t)plan.count, sizeof(Client));
    bins = calloc(LATENCY_BINS, sizeof(uint32_t));
    if (!clients || !bins) fail("out of memory");
    for (int i = 0; i < plan.count; i++) {
        if (!read_stdin_line(&line)) fail("the plan ended after %d of %d clients", i, plan.count);
        read_client(&clients[i], line);
        consume_stdin_line();
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *found;
    int status = getaddrinfo(plan.host, plan.port, &hints, &found);
    if (status) fail("cannot resolve %s: %s", plan.host, gai_strerror(status));
    struct addrinfo *chosen = found; /* IPv4 first: `localhost` may resolve to ::1 for a server on 127.0.0.1 */
    for (struct addrinfo *each = found; each; each = each->ai_next)
        if (each->ai_family == AF_INET) {
            chosen = each;
            break;
        }
    memcpy(&address, chosen->ai_addr, chosen->ai_addrlen);
    address_len = chosen->ai_addrlen;
    freeaddrinfo(found);
    poller = epoll_create1(0);
    if (poller < 0) fail("epoll_create1: %s", strerror(errno));

    connect_all();
    emit_ready();
    if (plan.idle) { /* held until the orchestrator closes stdin (it measures the server meanwhile) */
        alarm(0);
        while (wait_for_order()) consume_stdin_line();
        char result[64];
        write_all(1, result, (size_t)snprintf(result, sizeof result, "{\"result\": {\"idle\": %d}}\n", plan.count));
        return 0;
    }
    if (!wait_for_order()) fail("the orchestrator closed stdin before the start");
    if (sscanf(stdin_buffer, "start %lf %lf", &window_start, &window_end) != 2)
        fail("expected 'start START END', got: %.80s", stdin_buffer);
    consume_stdin_line();
    double cpu_s = run_window();
    close_all();
    emit_result(cpu_s);
    return 0;
}
