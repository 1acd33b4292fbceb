// A closed-loop DNS load generator for loopback benchmarks: keeps WINDOW queries in flight per socket with
// sendmmsg/recvmmsg, for SECONDS, from a file of queries; prints responses per second and an rcode tally.
//   dnsload PORT QUERYFILE SECONDS [WINDOW] [SOCKETS]
// QUERYFILE holds queries as a 2-byte big-endian length and the message, back to back.
// Only 127.0.0.1 is ever contacted.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 32, MAXQ = 1500 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT QUERYFILE SECONDS [WINDOW] [SOCKETS]\n", argv[0]);
        return 64;
    }
    int port = atoi(argv[1]);
    double seconds = atof(argv[3]);
    int window = argc > 4 ? atoi(argv[4]) : 64;
    int nsock = argc > 5 ? atoi(argv[5]) : 4;
    FILE *file = fopen(argv[2], "rb");
    if (!file) { perror("queries"); return 1; }
    static uint8_t queries[100000][512];
    static int lengths[100000];
    int count = 0;
    uint8_t lenbuf[2];
    while (count < 100000 && fread(lenbuf, 1, 2, file) == 2) {
        int length = lenbuf[0] << 8 | lenbuf[1];
        if (length > 512 || fread(queries[count], 1, length, file) != (size_t)length) break;
        lengths[count++] = length;
    }
    fclose(file);
    if (count == 0) { fprintf(stderr, "no queries\n"); return 1; }

    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
    int socks[64];
    int outstanding[64] = {0};
    double last_receive[64];
    for (int s = 0; s < nsock; s++) {
        socks[s] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int size = 4 << 20;
        setsockopt(socks[s], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (connect(socks[s], (struct sockaddr *)&server, sizeof server) != 0) { perror("connect"); return 1; }
    }
    struct mmsghdr out[BATCH], in[BATCH];
    struct iovec out_iov[BATCH], in_iov[BATCH];
    static uint8_t inbuf[BATCH][4096];
    long responses = 0, sent = 0, rcodes[16] = {0};
    int next = 0;
    uint16_t id = 0;
    double start = now(), end = start + seconds;
    for (int s = 0; s < nsock; s++) last_receive[s] = start;
    struct pollfd fds[64];
    while (1) {
        double t = now();
        if (t >= end) break;
        for (int s = 0; s < nsock; s++) {
            // Refill the window; a socket silent for 200 ms has lost packets: forget them.
            if (t - last_receive[s] > 0.2) { outstanding[s] = 0; last_receive[s] = t; }
            int room = window - outstanding[s];
            int n = 0;
            while (room > 0 && n < BATCH) {
                int q = next++ % count;
                queries[q][0] = id >> 8;
                queries[q][1] = id & 0xff;
                id++;
                out_iov[n].iov_base = queries[q];
                out_iov[n].iov_len = lengths[q];
                memset(&out[n].msg_hdr, 0, sizeof out[n].msg_hdr);
                out[n].msg_hdr.msg_iov = &out_iov[n];
                out[n].msg_hdr.msg_iovlen = 1;
                n++;
                room--;
            }
            if (n > 0) {
                int k = sendmmsg(socks[s], out, n, 0);
                if (k > 0) { outstanding[s] += k; sent += k; }
            }
        }
        for (int s = 0; s < nsock; s++) { fds[s].fd = socks[s]; fds[s].events = POLLIN; fds[s].revents = 0; }
        if (poll(fds, nsock, 10) <= 0) continue;
        for (int s = 0; s < nsock; s++) {
            if (!(fds[s].revents & POLLIN)) continue;
            for (;;) {
                for (int i = 0; i < BATCH; i++) {
                    in_iov[i].iov_base = inbuf[i];
                    in_iov[i].iov_len = sizeof inbuf[i];
                    memset(&in[i].msg_hdr, 0, sizeof in[i].msg_hdr);
                    in[i].msg_hdr.msg_iov = &in_iov[i];
                    in[i].msg_hdr.msg_iovlen = 1;
                }
                int k = recvmmsg(socks[s], in, BATCH, MSG_DONTWAIT, NULL);
                if (k <= 0) break;
                for (int i = 0; i < k; i++) {
                    if (in[i].msg_len >= 4) rcodes[inbuf[i][3] & 15]++;
                }
                responses += k;
                outstanding[s] -= k;
                if (outstanding[s] < 0) outstanding[s] = 0;
                last_receive[s] = now();
                if (k < BATCH) break;
            }
        }
    }
    double elapsed = now() - start;
    printf("qps %.0f sent %ld responses %ld noerror %ld nxdomain %ld servfail %ld refused %ld formerr %ld\n",
           responses / elapsed, sent, responses, rcodes[0], rcodes[3], rcodes[2], rcodes[5], rcodes[1]);
    return 0;
}
