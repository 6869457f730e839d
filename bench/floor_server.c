/* The fan-out floor in C: only the reads and writes of a room fan-out, no WebSocket, no engine.
 *
 * Built and run by bench/floor.py (`--server c`): gcc -O2 -o floor_server floor_server.c
 * Usage: floor_server PORT ROOM_SIZE TICK_HZ PACING_MS
 *
 * Clients are put in rooms of ROOM_SIZE in the order they connect. Each read keeps the last 48 bytes a
 * client sent (its newest pose); each tick sends every room's newest poses, one frame per member, the same
 * bytes to all (as Shoal does). While messages arrive the loop polls at most once per PACING_MS and never
 * sleeps past the next tick, like Shoal's ReadPacer. What this process costs per delivered pose is what
 * the kernel and the loop's own syscalls cost, with as little user-space work as C allows.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 20000
#define POSE 48
#define LISTENER MAX_CLIENTS

static int fds[MAX_CLIENTS];
static unsigned char poses[MAX_CLIENTS][POSE];
static int has_pose[MAX_CLIENTS];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    int port = atoi(argv[1]), room = atoi(argv[2]);
    double interval = 1.0 / atof(argv[3]), window = atof(argv[4]) / 1000.0;
    int clients = 0, one = 1;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 4096)) return 1;
    int poller = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = LISTENER};
    epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
    struct epoll_event ready[1024];
    static unsigned char buffer[65536];
    unsigned char *frame = malloc((size_t)room * POSE);
    double next_tick = now() + interval, last_pause = 0;
    for (;;) {
        int timeout = (int)((next_tick - now()) * 1000);
        int count = epoll_wait(poller, ready, 1024, timeout > 0 ? timeout : 0);
        int read_any = 0;
        for (int i = 0; i < count; i++) {
            unsigned id = ready[i].data.u32;
            if (id == LISTENER) {
                int client;
                while (clients < MAX_CLIENTS && (client = accept4(listener, 0, 0, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    fds[clients] = client;
                    struct epoll_event e = {.events = EPOLLIN, .data.u32 = clients++};
                    epoll_ctl(poller, EPOLL_CTL_ADD, client, &e);
                }
                continue;
            }
            ssize_t got = read(fds[id], buffer, sizeof buffer);
            if (got >= POSE) {
                memcpy(poses[id], buffer + got - POSE, POSE);
                has_pose[id] = read_any = 1;
            } else if (got == 0) {
                epoll_ctl(poller, EPOLL_CTL_DEL, fds[id], 0);
                close(fds[id]);
                fds[id] = -1;
            }
        }
        if (now() >= next_tick) {
            next_tick += interval;
            for (int first = 0; first < clients; first += room) {
                int end = first + room < clients ? first + room : clients, length = 0;
                for (int j = first; j < end; j++)
                    if (has_pose[j]) memcpy(frame + length, poses[j], POSE), length += POSE;
                for (int j = first; j < end && length; j++)
                    if (fds[j] >= 0) send(fds[j], frame, length, MSG_DONTWAIT | MSG_NOSIGNAL);
            }
        }
        if (read_any && window > 0) {
            double wait = window - (now() - last_pause), until_tick = next_tick - now();
            if (until_tick < wait) wait = until_tick;
            if (wait > 0) usleep((useconds_t)(wait * 1e6));
            last_pause = now();
        }
    }
}
