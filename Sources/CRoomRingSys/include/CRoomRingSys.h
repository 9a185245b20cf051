// The Linux calls the proxy's tunnel loop makes directly (epoll, eventfd, accept4), which Swift's Glibc module does
// not export. Thin wrappers only: the logic lives in Swift.
#ifndef CROOMRINGSYS_H
#define CROOMRINGSYS_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/// One readiness event, unpacked (the kernel's `struct epoll_event` is packed on x86_64).
typedef struct {
    uint32_t events;
    uint64_t token;
} rr_event;

enum {
    RR_EPOLLIN = 0x001,
    RR_EPOLLOUT = 0x004,
    RR_EPOLLERR = 0x008,
    RR_EPOLLHUP = 0x010,
    RR_EPOLLRDHUP = 0x2000,
    RR_EPOLLET = 1u << 31,
};

int rr_epoll_create(void);
int rr_epoll_add(int epfd, int fd, uint32_t events, uint64_t token);
int rr_epoll_del(int epfd, int fd);
/// Waits up to `timeout_ms` (-1: forever) and fills at most `max` events.
int rr_epoll_wait(int epfd, rr_event *events, int max, int timeout_ms);
int rr_eventfd(void);
/// Non-blocking, close-on-exec accept; fills the peer's address.
int rr_accept(int fd, struct sockaddr_storage *peer, socklen_t *length);
/// A non-blocking, close-on-exec TCP socket of `family`.
int rr_tcp_socket(int family);
/// Sets TCP_NODELAY.
int rr_nodelay(int fd);
/// Writes the IP address of `address` as text into `out` (at least 46 bytes); returns 0, or -1 for another family.
int rr_ip_text(const struct sockaddr_storage *address, char *out, socklen_t size);
/// The port of `address` in host order (0 for another family).
int rr_port(const struct sockaddr_storage *address);
/// Whether TCP_NODELAY is set (1), not (0), or -1 on error.
int rr_nodelay_enabled(int fd);
/// The socket's pending error (SO_ERROR), or errno when that cannot be read.
int rr_socket_error(int fd);

#endif
