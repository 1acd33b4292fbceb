#ifndef FRONTDOOR_CSYS_H
#define FRONTDOOR_CSYS_H
// Plain wrappers for what the Glibc module does not expose (epoll, recvmmsg/sendmmsg, pktinfo, getrandom).
// _GNU_SOURCE is defined only in CSys.c: defining it here breaks debug builds (fd_set conflicts).
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

// epoll ----------------------------------------------------------------------------------------------
typedef struct __attribute__((packed)) {
    uint32_t events;
    uint64_t data;
} csys_epoll_event;

enum {
    CSYS_EPOLLIN = 0x001,
    CSYS_EPOLLOUT = 0x004,
    CSYS_EPOLLERR = 0x008,
    CSYS_EPOLLHUP = 0x010,
    CSYS_EPOLLRDHUP = 0x2000,
};

int csys_epoll_create(void);
int csys_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int csys_epoll_modify(int epfd, int fd, uint32_t events, uint64_t data);
int csys_epoll_remove(int epfd, int fd);
int csys_epoll_wait(int epfd, csys_epoll_event *events, int count, int timeout_ms);

// eventfd: a counter another thread writes to wake an epoll loop.
int csys_eventfd(void);
void csys_eventfd_signal(int fd);
void csys_eventfd_drain(int fd);

// Sockets --------------------------------------------------------------------------------------------
/// A UDP or TCP socket bound to `address`, with SO_REUSEPORT (one per worker) and, for a wildcard address,
/// packet-info so replies leave from the address the query came to. TCP listeners are non-blocking; UDP
/// sockets block (their thread sleeps in recvmmsg). Returns the fd or -errno.
int csys_listen_udp(const struct sockaddr *address, socklen_t length, int reuse_port);
int csys_listen_tcp(const struct sockaddr *address, socklen_t length, int reuse_port, int backlog);
/// A port that no UDP or TCP socket holds on `address`'s host (whose port is ignored), for listeners asked
/// for port 0: their own SO_REUSEPORT would let the kernel hand them a port another SO_REUSEPORT socket of
/// the same user holds. Returns the port or -errno.
int csys_unshared_port(const struct sockaddr *address, socklen_t length);
/// Whether a listener could be bound on `address` with no other process's socket in the way (TCP when
/// `stream`): 0 when free, else -errno (EADDRINUSE when some socket, SO_REUSEPORT or not, holds it).
int csys_probe_listener(int stream, const struct sockaddr *address, socklen_t length);
/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; -errno on failure.
int csys_accept(int fd, struct sockaddr_storage *peer, socklen_t *length);
/// A non-blocking UDP socket connected to `address` from a kernel-chosen random port; -errno on failure.
int csys_connect_udp(const struct sockaddr *address, socklen_t length);
/// A non-blocking TCP connect in progress; -errno on failure.
int csys_connect_tcp(const struct sockaddr *address, socklen_t length);
/// The bound port of a socket (for listeners on port 0 in tests); -1 on failure.
int csys_local_port(int fd);
int csys_errno(void);
int csys_set_nodelay(int fd);
/// An inotify descriptor watching `directory` for files written, moved, created or deleted; -errno on failure.
int csys_inotify_watch(const char *directory);
/// Waits up to `timeout_ms` for events and writes the names they concern into `names`, one per line;
/// returns the bytes written (0 on timeout), -errno on failure.
int csys_inotify_read(int fd, char *names, int size, int timeout_ms);
/// sd_notify(3) without libsystemd: sends `state` ("READY=1", "RELOADING=1\nMONOTONIC_USEC=...", "STOPPING=1")
/// to $NOTIFY_SOCKET. 0 when not run by systemd, 1 when sent, -errno on failure.
int csys_sd_notify(const char *state);
/// TCP_DEFER_ACCEPT: accept returns a connection only once its first data arrived (HTTP listeners).
int csys_set_defer_accept(int fd, int seconds);
/// 1 when an idle pooled connection is still usable: open, and nothing unread (a backend that sent bytes or
/// closed while idle is out of step or gone).
int csys_idle_alive(int fd);
/// 0 when a non-blocking connect finished successfully, else the pending socket error.
int csys_socket_error(int fd);

// Batched UDP ----------------------------------------------------------------------------------------
/// Buffers for up to `count` datagrams in and out, with their addresses and packet-info.
typedef struct csys_batch csys_batch;
csys_batch *csys_batch_create(int count, int size);
void csys_batch_destroy(csys_batch *batch);
/// recvmmsg without blocking; the number received, 0 when none, -errno on error.
int csys_batch_receive(csys_batch *batch, int fd);
/// recvmmsg that sleeps until at least one datagram arrives (then takes what is there), or the socket's
/// receive timeout passes (0 returned).
int csys_batch_receive_wait(csys_batch *batch, int fd);
/// SO_RCVTIMEO: how long a blocking receive on `fd` may sleep.
int csys_set_receive_timeout(int fd, int timeout_ms);
/// Where the batch keeps its buffers (`count` of `size` bytes each, in and out), the peers' addresses and,
/// after each receive, the datagrams' lengths (-1: truncated). Fixed for the batch's life, so a caller
/// reads them once instead of calling per datagram.
void csys_batch_layout(csys_batch *batch, uint8_t **in, uint8_t **out, const struct sockaddr_storage **peers,
                       const int **lengths);
/// Queues reply `index` (already written into its out buffer) to go back to its peer.
void csys_batch_reply(csys_batch *batch, int index, int length);
/// sendmmsg of the queued replies; returns how many went out. Clears the queue.
int csys_batch_send(csys_batch *batch, int fd);

/// The local address datagram `index` was sent to (from packet-info on wildcard sockets): 4 or 6 with the
/// address bytes, 0 when the socket does not report it.
int csys_batch_local(csys_batch *batch, int index, uint8_t *bytes);
/// sendmsg to `peer` from the local address `local` (family 4 or 6; 0 lets routing choose), non-blocking.
long csys_send_from(int fd, const void *data, size_t length, const struct sockaddr_storage *peer, int family,
                    const uint8_t *local);

// Addresses ------------------------------------------------------------------------------------------
/// 4 for IPv4, 6 for IPv6, 0 otherwise; the address in network order into `bytes` (4 or 16) and the port.
/// Inline: it runs for every datagram.
static inline int csys_address_parts(const struct sockaddr_storage *address, uint8_t *bytes, uint16_t *port) {
    if (address->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
        memcpy(bytes, &v4->sin_addr, 4);
        *port = ntohs(v4->sin_port);
        return 4;
    }
    if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
        memcpy(bytes, &v6->sin6_addr, 16);
        *port = ntohs(v6->sin6_port);
        return 6;
    }
    return 0;
}
/// Builds a sockaddr from 4 or 16 address bytes and a port; returns its length.
socklen_t csys_make_address(struct sockaddr_storage *address, const uint8_t *bytes, int family, uint16_t port);

/// Random bytes from the kernel (getrandom), for DNS IDs and jitter.
uint32_t csys_random32(void);
/// Fills `length` bytes from the kernel's random source (getrandom); `length`, or -errno.
long csys_random_fill(void *buffer, size_t length);
/// CLOCK_MONOTONIC in milliseconds.
uint64_t csys_now_ms(void);
/// Returns freed heap memory to the system (malloc_trim): for after a large compile, never per request.
void csys_trim_heap(void);
/// Names the calling thread (at most 15 characters show in top and perf).
void csys_set_thread_name(const char *name);

// Zero-copy relay: a non-blocking pipe, and splice(2) between a socket and it (-errno on failure).
int csys_pipe(int fds[2]);
/// A blocking pipe, close-on-exec from the start (pipe2): for reading a child's output while other threads
/// start programs too, none of which may inherit an end. -errno on failure.
int csys_pipe_cloexec(int fds[2]);
/// unshare(CLONE_NEWNET): the calling thread alone moves to a new network namespace (tests). -errno on failure.
int csys_unshare_network(void);

/// An unbound, unconnected IPv4 UDP socket (non-blocking, close-on-exec); -errno on failure.
int csys_udp4_socket(void);

/// A netlink route socket (non-blocking, close-on-exec) subscribed to link and IPv4/IPv6 address changes;
/// -errno on failure.
int csys_netlink_interface_events(void);
long csys_splice(int from, int to, size_t length);

// Counters: one writer thread adds without a locked instruction; any thread may read (relaxed).
void csys_counter_add(uint64_t *counter, uint64_t amount);
uint64_t csys_counter_read(const uint64_t *counter);
/// A hint that `address` will be read soon (never faults, whatever the address).
static inline void csys_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
