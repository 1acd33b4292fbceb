// The physical limit of loopback UDP here: a responder that answers every query with a canned reply
// (copies the ID and question, appends one A record) using recvmmsg/sendmmsg, one thread.
//   ceiling PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum { BATCH = 64, SIZE = 4096 };

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s PORT\n", argv[0]); return 64; }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) { perror("bind"); return 1; }
    // As NSD, Knot and Frontdoor do: ignore path MTU news. It also spares the kernel two MTU lookups per
    // reply, so the ceiling must have it too to stay the limit.
    int omit = IP_PMTUDISC_OMIT;
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &omit, sizeof omit);
    static uint8_t in[BATCH][SIZE], out[BATCH][SIZE];
    struct sockaddr_in peers[BATCH];
    struct iovec in_iov[BATCH], out_iov[BATCH];
    struct mmsghdr in_msgs[BATCH], out_msgs[BATCH];
    static const uint8_t answer[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, 42};
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            in_iov[i].iov_base = in[i];
            in_iov[i].iov_len = SIZE;
            memset(&in_msgs[i].msg_hdr, 0, sizeof in_msgs[i].msg_hdr);
            in_msgs[i].msg_hdr.msg_name = &peers[i];
            in_msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
            in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
            in_msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, in_msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0) continue;
        int k = 0;
        for (int i = 0; i < n; i++) {
            int length = in_msgs[i].msg_len;
            if (length < 17) continue;
            // The question ends after the first name and 4 bytes.
            int q = 12;
            while (q < length && in[i][q] != 0) q += in[i][q] + 1;
            q += 5;
            if (q > length) continue;
            memcpy(out[k], in[i], q);
            out[k][2] = 0x84 | (in[i][2] & 1);
            out[k][3] = 0;
            out[k][6] = 0; out[k][7] = 1; out[k][8] = 0; out[k][9] = 0; out[k][10] = 0; out[k][11] = 0;
            memcpy(out[k] + q, answer, sizeof answer);
            out_iov[k].iov_base = out[k];
            out_iov[k].iov_len = q + sizeof answer;
            memset(&out_msgs[k].msg_hdr, 0, sizeof out_msgs[k].msg_hdr);
            out_msgs[k].msg_hdr.msg_name = &peers[i];
            out_msgs[k].msg_hdr.msg_namelen = in_msgs[i].msg_hdr.msg_namelen;
            out_msgs[k].msg_hdr.msg_iov = &out_iov[k];
            out_msgs[k].msg_hdr.msg_iovlen = 1;
            k++;
        }
        if (k > 0) sendmmsg(fd, out_msgs, k, 0);
    }
}
