// TLS handshake load for Tests/Benchmarks/https.sh: THREADS threads, each opening connections one after
// another for SECONDS: connect, TLS 1.3 handshake (SNI NAME, no verification: a benchmark), one
// "Connection: close" request, read to the end, close. With "resume" each connection offers the session of
// the thread's previous one (SSL_set_session), so the server may resume instead of a full handshake.
// Prints: connections, resumed, failures, p99 of connection time (ms).
//   tlsload HOST PORT NAME SECONDS THREADS full|resume
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *name;
static int port, seconds, resume;
static SSL_CTX *context;

struct result { long connections, resumed, failures; double *times; long count, capacity; };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *run(void *argument) {
    struct result *result = argument;
    SSL_SESSION *session = NULL;
    char request[256], buffer[16384];
    snprintf(request, sizeof request, "GET /tiny.txt HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", name);
    double end = now() + seconds;
    while (now() < end) {
        double start = now();
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, host, &address.sin_addr);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL *ssl = NULL;
        int ok = connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
        if (ok) {
            ssl = SSL_new(context);
            SSL_set_fd(ssl, fd);
            SSL_set_tlsext_host_name(ssl, name);
            if (resume && session) SSL_set_session(ssl, session);
            ok = SSL_connect(ssl) == 1 && SSL_write(ssl, request, (int)strlen(request)) > 0;
        }
        long got = 0;
        while (ok) {
            int n = SSL_read(ssl, buffer, sizeof buffer);
            if (n <= 0) break;
            got += n;
        }
        if (ok && got > 0) {
            result->connections++;
            if (SSL_session_reused(ssl)) result->resumed++;
            if (resume) {
                SSL_SESSION *latest = SSL_get1_session(ssl);
                if (latest) {
                    if (session) SSL_SESSION_free(session);
                    session = latest;
                }
            }
            if (result->count == result->capacity) {
                result->capacity = result->capacity ? result->capacity * 2 : 4096;
                result->times = realloc(result->times, result->capacity * sizeof(double));
            }
            result->times[result->count++] = (now() - start) * 1000;
            // A connection freed without a shutdown marks its session not resumable: end it quietly (no
            // close_notify is sent; the server has closed already).
            SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        } else {
            result->failures++;
            ERR_clear_error();
        }
        if (ssl) SSL_free(ssl);
        close(fd);
    }
    if (session) SSL_SESSION_free(session);
    return NULL;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: tlsload HOST PORT NAME SECONDS THREADS full|resume\n");
        return 64;
    }
    host = argv[1];
    port = atoi(argv[2]);
    name = argv[3];
    seconds = atoi(argv[4]);
    int threads = atoi(argv[5]);
    resume = strcmp(argv[6], "resume") == 0;
    context = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION);
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    pthread_t ids[64];
    struct result results[64];
    memset(results, 0, sizeof results);
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, run, &results[i]);
    struct result total = {0};
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        total.connections += results[i].connections;
        total.resumed += results[i].resumed;
        total.failures += results[i].failures;
        for (long j = 0; j < results[i].count; j++) {
            if (total.count == total.capacity) {
                total.capacity = total.capacity ? total.capacity * 2 : 4096;
                total.times = realloc(total.times, total.capacity * sizeof(double));
            }
            total.times[total.count++] = results[i].times[j];
        }
    }
    double p99 = 0;
    if (total.count) {
        qsort(total.times, total.count, sizeof(double), compare);
        p99 = total.times[(long)(total.count * 0.99)];
    }
    printf("%ld %ld %ld %.2f\n", total.connections, total.resumed, total.failures, p99);
    return 0;
}
