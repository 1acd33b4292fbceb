#define _GNU_SOURCE
#include "CSys.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/un.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/inotify.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(csys_epoll_event) == sizeof(struct epoll_event), "epoll_event layout");

int csys_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int epoll_control(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event = {.events = events, .data.u64 = data};
    return epoll_ctl(epfd, op, fd, &event) == 0 ? 0 : -errno;
}

int csys_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) {
    return epoll_control(epfd, EPOLL_CTL_ADD, fd, events, data);
}
int csys_epoll_modify(int epfd, int fd, uint32_t events, uint64_t data) {
    return epoll_control(epfd, EPOLL_CTL_MOD, fd, events, data);
}
int csys_epoll_remove(int epfd, int fd) { return epoll_control(epfd, EPOLL_CTL_DEL, fd, 0, 0); }

int csys_epoll_wait(int epfd, csys_epoll_event *events, int count, int timeout_ms) {
    int n = epoll_wait(epfd, (struct epoll_event *)events, count, timeout_ms);
    return n < 0 ? -errno : n;
}

int csys_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
void csys_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t ignored = write(fd, &one, sizeof one);
    (void)ignored;
}
void csys_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t ignored = read(fd, &value, sizeof value);
    (void)ignored;
}

/// How a bound socket shares its port: EXCLUSIVE binds fail when any socket holds the port, whatever its
/// options (used to find a port nobody holds); the others set SO_REUSEADDR, and SO_REUSEPORT (one per worker).
enum sharing { EXCLUSIVE, REUSE_ADDRESS, REUSE_PORT };

static int bound_socket(int type, const struct sockaddr *address, socklen_t length, enum sharing sharing) {
    int fd = socket(address->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (sharing != EXCLUSIVE) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sharing == REUSE_PORT && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    if (address->sa_family == AF_INET6) {
        // [::] serves IPv6 only; 0.0.0.0 is a listener of its own.
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (bind(fd, address, length) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

static int is_wildcard(const struct sockaddr *address) {
    if (address->sa_family == AF_INET) return ((const struct sockaddr_in *)address)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (address->sa_family == AF_INET6) {
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)address)->sin6_addr);
    }
    return 0;
}

int csys_listen_udp(const struct sockaddr *address, socklen_t length, int reuse_port) {
    int fd = bound_socket(SOCK_DGRAM, address, length, reuse_port ? REUSE_PORT : REUSE_ADDRESS);
    if (fd < 0) return fd;
    // Blocking: its thread sleeps in recvmmsg (bounded by SO_RCVTIMEO); every other call on it passes
    // MSG_DONTWAIT. A non-blocking socket would make that thread spin.
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    // Never trust path MTU news for answers (as NSD and Knot do): an ICMP "fragmentation needed" or
    // "packet too big" can be forged to make a server fragment its answers, and a fragment is what a
    // cache-poisoning attacker replaces. With OMIT the socket ignores those messages and sends at the
    // interface MTU; answers are at most 1232 bytes, so they fit every path without fragments.
    if (address->sa_family == AF_INET) {
        int omit = IP_PMTUDISC_OMIT;
        setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &omit, sizeof omit);
    } else {
        int omit = IPV6_PMTUDISC_OMIT;
        setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &omit, sizeof omit);
    }
    if (is_wildcard(address)) {
        int one = 1;
        if (address->sa_family == AF_INET) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
        else setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    }
    return fd;
}

int csys_listen_tcp(const struct sockaddr *address, socklen_t length, int reuse_port, int backlog) {
    int fd = bound_socket(SOCK_STREAM, address, length, reuse_port ? REUSE_PORT : REUSE_ADDRESS);
    if (fd < 0) return fd;
    if (listen(fd, backlog) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int csys_unshared_port(const struct sockaddr *address, socklen_t length) {
    struct sockaddr_storage chosen;
    if (length > sizeof chosen) return -EINVAL;
    memcpy(&chosen, address, length);
    for (int attempt = 0; attempt < 64; attempt++) {
        // The kernel's pick for an exclusive socket is a port nobody holds; a socket with SO_REUSEPORT
        // would be handed one that another such socket of the same user holds, and share its traffic.
        int udp = bound_socket(SOCK_DGRAM, address, length, EXCLUSIVE);
        if (udp < 0) return udp;
        int port = csys_local_port(udp);
        if (port <= 0) {
            close(udp);
            return -EADDRNOTAVAIL;
        }
        if (chosen.ss_family == AF_INET) ((struct sockaddr_in *)&chosen)->sin_port = htons((uint16_t)port);
        else ((struct sockaddr_in6 *)&chosen)->sin6_port = htons((uint16_t)port);
        int tcp = bound_socket(SOCK_STREAM, (struct sockaddr *)&chosen, length, EXCLUSIVE);
        close(udp);
        if (tcp >= 0) {
            close(tcp);
            return port;
        }
        if (tcp != -EADDRINUSE) return tcp;
    }
    return -EADDRINUSE;
}

int csys_probe_listener(int stream, const struct sockaddr *address, socklen_t length) {
    // UDP: an exclusive bind fails where any socket holds the address, SO_REUSEPORT or not. TCP: with
    // SO_REUSEADDR the bind ignores connections in TIME_WAIT (a restart) but fails on a listening socket.
    int fd = bound_socket(stream ? SOCK_STREAM : SOCK_DGRAM, address, length, stream ? REUSE_ADDRESS : EXCLUSIVE);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

int csys_accept(int fd, struct sockaddr_storage *peer, socklen_t *length) {
    *length = sizeof *peer;
    int client = accept4(fd, (struct sockaddr *)peer, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return client < 0 ? -errno : client;
}

int csys_connect_udp(const struct sockaddr *address, socklen_t length) {
    int fd = socket(address->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, address, length) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int csys_connect_tcp(const struct sockaddr *address, socklen_t length) {
    int fd = socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, address, length) != 0 && errno != EINPROGRESS) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int csys_local_port(int fd) {
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    if (getsockname(fd, (struct sockaddr *)&address, &length) != 0) return -1;
    if (address.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&address)->sin_port);
    if (address.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
    return -1;
}

int csys_errno(void) { return errno; }

int csys_set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int csys_inotify_watch(const char *directory) {
    int fd = inotify_init1(IN_CLOEXEC);
    if (fd < 0) return -errno;
    if (inotify_add_watch(fd, directory, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int csys_inotify_read(int fd, char *names, int size, int timeout_ms) {
    struct pollfd entry = {.fd = fd, .events = POLLIN};
    int ready = poll(&entry, 1, timeout_ms);
    if (ready <= 0) return ready < 0 ? -errno : 0;
    char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t got = read(fd, buffer, sizeof buffer);
    if (got <= 0) return got < 0 ? -errno : 0;
    int used = 0;
    for (char *cursor = buffer; cursor < buffer + got;) {
        struct inotify_event *event = (struct inotify_event *)cursor;
        if (event->len > 0) {
            size_t length = strlen(event->name);
            if (used + (int)length + 1 < size) {
                memcpy(names + used, event->name, length);
                used += (int)length;
                names[used++] = '\n';
            }
        }
        cursor += sizeof(struct inotify_event) + event->len;
    }
    names[used] = 0;
    return used;
}

int csys_sd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == 0) return 0;
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    size_t length = strlen(path);
    if (length >= sizeof address.sun_path) return -EINVAL;
    memcpy(address.sun_path, path, length);
    // '@' stands for the abstract namespace (a leading NUL byte).
    if (path[0] == '@') address.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    socklen_t size = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length);
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&address, size);
    int error = errno;
    close(fd);
    return sent < 0 ? -error : 1;
}

int csys_set_defer_accept(int fd, int seconds) {
    return setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds);
}

int csys_idle_alive(int fd) {
    char byte;
    ssize_t got = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int csys_socket_error(int fd) {
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
    return error;
}

// Batched UDP ----------------------------------------------------------------------------------------

enum { CONTROL_SIZE = 64 };

struct csys_batch {
    int count;
    int size;
    int queued;
    uint8_t *in;
    uint8_t *out;
    struct sockaddr_storage *peers;
    uint8_t *control;
    struct iovec *in_vectors;
    struct mmsghdr *in_messages;
    struct iovec *out_vectors;
    struct mmsghdr *out_messages;
    uint8_t *out_control;
    /// Per datagram of the last receive: its length, -1 when it was truncated.
    int *lengths;
};

csys_batch *csys_batch_create(int count, int size) {
    csys_batch *batch = calloc(1, sizeof *batch);
    if (!batch) return NULL;
    batch->count = count;
    batch->size = size;
    batch->in = malloc((size_t)count * size);
    batch->out = malloc((size_t)count * size);
    batch->peers = calloc(count, sizeof *batch->peers);
    batch->control = calloc(count, CONTROL_SIZE);
    batch->out_control = calloc(count, CONTROL_SIZE);
    batch->in_vectors = calloc(count, sizeof *batch->in_vectors);
    batch->in_messages = calloc(count, sizeof *batch->in_messages);
    batch->out_vectors = calloc(count, sizeof *batch->out_vectors);
    batch->out_messages = calloc(count, sizeof *batch->out_messages);
    batch->lengths = calloc(count, sizeof *batch->lengths);
    if (!batch->in || !batch->out || !batch->peers || !batch->control || !batch->out_control || !batch->in_vectors ||
        !batch->in_messages || !batch->out_vectors || !batch->out_messages || !batch->lengths) {
        csys_batch_destroy(batch);
        return NULL;
    }
    return batch;
}

void csys_batch_destroy(csys_batch *batch) {
    if (!batch) return;
    free(batch->in);
    free(batch->out);
    free(batch->peers);
    free(batch->control);
    free(batch->out_control);
    free(batch->in_vectors);
    free(batch->in_messages);
    free(batch->out_vectors);
    free(batch->out_messages);
    free(batch->lengths);
    free(batch);
}

static int batch_receive(csys_batch *batch, int fd, int flags);

int csys_batch_receive(csys_batch *batch, int fd) { return batch_receive(batch, fd, MSG_DONTWAIT); }

int csys_set_receive_timeout(int fd, int timeout_ms) {
    struct timeval timeout = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
}

int csys_batch_receive_wait(csys_batch *batch, int fd) { return batch_receive(batch, fd, MSG_WAITFORONE); }

static int batch_receive(csys_batch *batch, int fd, int flags) {
    // The kernel overwrites lengths: reset every one before each call.
    for (int i = 0; i < batch->count; i++) {
        batch->in_vectors[i].iov_base = batch->in + (size_t)i * batch->size;
        batch->in_vectors[i].iov_len = batch->size;
        struct msghdr *header = &batch->in_messages[i].msg_hdr;
        header->msg_name = &batch->peers[i];
        header->msg_namelen = sizeof batch->peers[i];
        header->msg_iov = &batch->in_vectors[i];
        header->msg_iovlen = 1;
        header->msg_control = batch->control + (size_t)i * CONTROL_SIZE;
        header->msg_controllen = CONTROL_SIZE;
        header->msg_flags = 0;
        batch->in_messages[i].msg_len = 0;
        batch->lengths[i] = 0;
    }
    batch->queued = 0;
    int n = recvmmsg(fd, batch->in_messages, batch->count, flags, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        // A datagram larger than the buffer is truncated: report it as too long to parse.
        const struct mmsghdr *message = &batch->in_messages[i];
        batch->lengths[i] = (message->msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int)message->msg_len;
    }
    return n;
}

void csys_batch_layout(csys_batch *batch, uint8_t **in, uint8_t **out, const struct sockaddr_storage **peers,
                       const int **lengths) {
    *in = batch->in;
    *out = batch->out;
    *peers = batch->peers;
    *lengths = batch->lengths;
}

/// Writes a packet-info control message that makes a reply leave from `local` (family 4 or 6; for IPv6
/// through interface `ifindex`, which link-local addresses need); returns the control length, 0 for an
/// unknown family.
static size_t write_pktinfo(uint8_t *buffer, int family, const void *local, unsigned ifindex) {
    struct cmsghdr *out = (struct cmsghdr *)buffer;
    if (family == 4) {
        struct in_pktinfo info;
        memset(&info, 0, sizeof info);
        memcpy(&info.ipi_spec_dst, local, 4);
        out->cmsg_level = IPPROTO_IP;
        out->cmsg_type = IP_PKTINFO;
        out->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(out), &info, sizeof info);
        return CMSG_SPACE(sizeof info);
    }
    if (family == 6) {
        struct in6_pktinfo info;
        memset(&info, 0, sizeof info);
        memcpy(&info.ipi6_addr, local, 16);
        info.ipi6_ifindex = ifindex;
        out->cmsg_level = IPPROTO_IPV6;
        out->cmsg_type = IPV6_PKTINFO;
        out->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(out), &info, sizeof info);
        return CMSG_SPACE(sizeof info);
    }
    return 0;
}

/// Copies the packet-info of received message `index` into a reply's control data, as its source.
static size_t reply_control(csys_batch *batch, int index, uint8_t *buffer) {
    struct msghdr *received = &batch->in_messages[index].msg_hdr;
    if (received->msg_controllen == 0) return 0;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(received); cmsg; cmsg = CMSG_NXTHDR(received, cmsg)) {
        if (cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(cmsg), sizeof info);
            return write_pktinfo(buffer, 4, &info.ipi_addr, 0);
        }
        if (cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo info;
            memcpy(&info, CMSG_DATA(cmsg), sizeof info);
            return write_pktinfo(buffer, 6, &info.ipi6_addr, info.ipi6_ifindex);
        }
    }
    return 0;
}

void csys_batch_reply(csys_batch *batch, int index, int length) {
    int slot = batch->queued++;
    batch->out_vectors[slot].iov_base = batch->out + (size_t)index * batch->size;
    batch->out_vectors[slot].iov_len = (size_t)length;
    struct msghdr *header = &batch->out_messages[slot].msg_hdr;
    header->msg_name = &batch->peers[index];
    header->msg_namelen = batch->in_messages[index].msg_hdr.msg_namelen;
    header->msg_iov = &batch->out_vectors[slot];
    header->msg_iovlen = 1;
    uint8_t *control = batch->out_control + (size_t)slot * CONTROL_SIZE;
    size_t control_length = reply_control(batch, index, control);
    header->msg_control = control_length ? control : NULL;
    header->msg_controllen = control_length;
    header->msg_flags = 0;
}

int csys_batch_send(csys_batch *batch, int fd) {
    int total = 0;
    while (total < batch->queued) {
        int n = sendmmsg(fd, batch->out_messages + total, batch->queued - total, MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            // A full send buffer or a vanished peer: skip one message rather than spin.
            total += 1;
            continue;
        }
        total += n;
    }
    int sent = batch->queued;
    batch->queued = 0;
    return sent;
}

int csys_batch_local(csys_batch *batch, int index, uint8_t *bytes) {
    struct msghdr *received = &batch->in_messages[index].msg_hdr;
    if (received->msg_controllen == 0) return 0;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(received); cmsg; cmsg = CMSG_NXTHDR(received, cmsg)) {
        if (cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(cmsg), sizeof info);
            memcpy(bytes, &info.ipi_addr, 4);
            return 4;
        }
        if (cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo info;
            memcpy(&info, CMSG_DATA(cmsg), sizeof info);
            memcpy(bytes, &info.ipi6_addr, 16);
            return 6;
        }
    }
    return 0;
}

long csys_send_from(int fd, const void *data, size_t length, const struct sockaddr_storage *peer, int family,
                    const uint8_t *local) {
    struct iovec vector = {.iov_base = (void *)data, .iov_len = length};
    uint8_t control[CONTROL_SIZE];
    memset(control, 0, sizeof control);
    struct msghdr message = {
        .msg_name = (void *)peer,
        .msg_namelen = peer->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6),
        .msg_iov = &vector,
        .msg_iovlen = 1,
    };
    size_t control_length = write_pktinfo(control, family, local, 0);
    if (control_length) {
        message.msg_control = control;
        message.msg_controllen = control_length;
    }
    return sendmsg(fd, &message, MSG_DONTWAIT);
}

socklen_t csys_make_address(struct sockaddr_storage *address, const uint8_t *bytes, int family, uint16_t port) {
    memset(address, 0, sizeof *address);
    if (family == 4) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)address;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        memcpy(&v4->sin_addr, bytes, 4);
        return sizeof *v4;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)address;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    memcpy(&v6->sin6_addr, bytes, 16);
    return sizeof *v6;
}

long csys_random_fill(void *buffer, size_t length) {
    size_t filled = 0;
    while (filled < length) {
        ssize_t got = getrandom((char *)buffer + filled, length - filled, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        filled += (size_t)got;
    }
    return (long)filled;
}

uint32_t csys_random32(void) {
    uint32_t value = 0;
    if (getrandom(&value, sizeof value, 0) != sizeof value) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        value = (uint32_t)(now.tv_nsec ^ (now.tv_sec << 20) ^ getpid());
    }
    return value;
}

uint64_t csys_now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

#include <pthread.h>
void csys_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

// Counters ------------------------------------------------------------------------------------------

void csys_counter_add(uint64_t *counter, uint64_t amount) {
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + amount, __ATOMIC_RELAXED);
}

uint64_t csys_counter_read(const uint64_t *counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }

// Zero-copy relay ------------------------------------------------------------------------------------

int csys_pipe(int fds[2]) {
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -errno;
    // A bigger pipe moves more per call (best effort).
    fcntl(fds[1], F_SETPIPE_SZ, 256 * 1024);
    return 0;
}

int csys_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno; }

int csys_unshare_network(void) { return unshare(CLONE_NEWNET) == 0 ? 0 : -errno; }

int csys_udp4_socket(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    return fd < 0 ? -errno : fd;
}

int csys_netlink_interface_events(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0) return -errno;
    struct sockaddr_nl address = {.nl_family = AF_NETLINK,
                                  .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR};
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

long csys_splice(int from, int to, size_t length) {
    ssize_t moved = splice(from, NULL, to, NULL, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    return moved < 0 ? -errno : moved;
}

void csys_trim_heap(void) { malloc_trim(0); }
