// The project's single TLS and crypto boundary: the system OpenSSL (libssl-dev at build time).
#ifndef FRONTDOOR_COPENSSL_H
#define FRONTDOOR_COPENSSL_H
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

// Macros Swift cannot call, as functions.
#ifndef FRONTDOOR_COPENSSL_INLINE
#define FRONTDOOR_COPENSSL_INLINE
static inline long frontdoor_tls_set_sni(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline unsigned long frontdoor_tls_error_text(char *buffer, size_t size) {
    unsigned long code = ERR_get_error();
    if (code != 0) ERR_error_string_n(code, buffer, size);
    return code;
}

// The TLS server's settings (Sources/TLS): the macros of ssl.h as functions.
static inline int frontdoor_tls_ctx_set_versions(SSL_CTX *ctx, int minimum, int maximum) {
    return SSL_CTX_set_min_proto_version(ctx, minimum) == 1 && SSL_CTX_set_max_proto_version(ctx, maximum) == 1;
}
// No renegotiation, no compression, and a peer that closes without close_notify has simply closed.
static inline uint64_t frontdoor_tls_server_options(void) {
    return SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF;
}
static inline long frontdoor_tls_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long frontdoor_tls_ctx_set_session_cache(SSL_CTX *ctx, long mode, long size) {
    SSL_CTX_sess_set_cache_size(ctx, size);
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
typedef int (*frontdoor_tls_servername_cb)(SSL *ssl, int *alert, void *arg);
static inline void frontdoor_tls_ctx_set_servername(SSL_CTX *ctx, frontdoor_tls_servername_cb cb, void *arg) {
    SSL_CTX_set_tlsext_servername_callback(ctx, cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
static inline int frontdoor_tls_error_is_http_request(unsigned long code) {
    return ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST;
}
// The DNS names of a certificate's subjectAltName, one at a time: the name with this index copied into
// `buffer`, its length returned; -1 past the last one (or when it does not fit).
static inline int frontdoor_tls_dns_name(X509 *certificate, int index, unsigned char *buffer, int size) {
    GENERAL_NAMES *names = X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL);
    int length = -1;
    int seen = 0;
    if (names == NULL) return -1;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_DNS) continue;
        if (seen++ == index) {
            int count = ASN1_STRING_length(name->d.dNSName);
            if (count >= 0 && count <= size) {
                memcpy(buffer, ASN1_STRING_get0_data(name->d.dNSName), (size_t)count);
                length = count;
            }
            break;
        }
    }
    GENERAL_NAMES_free(names);
    return length;
}
#endif
#endif
