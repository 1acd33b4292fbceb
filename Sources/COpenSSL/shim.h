// The project's single TLS and crypto boundary: the system OpenSSL (libssl-dev at build time).
#ifndef FRONTDOOR_COPENSSL_H
#define FRONTDOOR_COPENSSL_H
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
#endif
#endif
