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
#include <time.h>

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
// No renegotiation, no compression, and a peer that closes without close_notify has simply closed. The
// server's order of suites decides (AES-128-GCM first: as strong in practice and a third fewer AES rounds
// than AES-256 per byte), except that a client that puts ChaCha20 first (no AES instructions) gets it.
static inline uint64_t frontdoor_tls_server_options(void) {
    return SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF
        | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA;
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

// The internal CA (Sources/TLS/InternalCA.swift): keys, certificates and PEM in memory.
#include <openssl/pem.h>
#include <openssl/bn.h>
#include <stdlib.h>

// A new ECDSA P-256 key, or NULL.
static inline EVP_PKEY *frontdoor_tls_new_p256_key(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); }

// A certificate for `key` named `commonName`, valid from an hour ago for `seconds`, with a random positive
// 128-bit serial and the extensions in `extensions` ("name=value" lines, in order), signed by `issuerKey` as
// `issuer` (both NULL: self-signed). NULL on any failure.
static inline X509 *frontdoor_tls_sign(EVP_PKEY *key, const char *commonName, long seconds,
                                       const char *extensions, X509 *issuer, EVP_PKEY *issuerKey) {
    X509 *certificate = X509_new();
    BIGNUM *number = NULL;
    char *lines = NULL;
    unsigned char serial[16];
    int ok = certificate != NULL && RAND_bytes(serial, sizeof serial) == 1;
    if (ok) {
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        number = BN_bin2bn(serial, sizeof serial, NULL);
        ok = number != NULL && BN_to_ASN1_INTEGER(number, X509_get_serialNumber(certificate)) != NULL;
    }
    ok = ok && X509_set_version(certificate, 2) == 1;
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) != NULL;
    ok = ok && X509_gmtime_adj(X509_getm_notAfter(certificate), seconds) != NULL;
    ok = ok && X509_set_pubkey(certificate, key) == 1;
    if (ok) {
        X509_NAME *name = X509_get_subject_name(certificate);
        ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)commonName, -1, -1, 0) == 1;
        ok = ok && X509_set_issuer_name(certificate, issuer ? X509_get_subject_name(issuer) : name) == 1;
    }
    if (ok) {
        X509V3_CTX context;
        X509V3_set_ctx(&context, issuer ? issuer : certificate, certificate, NULL, NULL, 0);
        lines = strdup(extensions);
        ok = lines != NULL;
        char *cursor = lines;
        char *line;
        while (ok && (line = strsep(&cursor, "\n")) != NULL) {
            if (*line == 0) continue;
            char *equals = strchr(line, '=');
            if (equals == NULL) { ok = 0; break; }
            *equals = 0;
            X509_EXTENSION *extension = X509V3_EXT_conf(NULL, &context, line, equals + 1);
            ok = extension != NULL && X509_add_ext(certificate, extension, -1) == 1;
            X509_EXTENSION_free(extension);
        }
    }
    ok = ok && X509_sign(certificate, issuerKey ? issuerKey : key, EVP_sha256()) > 0;
    free(lines);
    BN_free(number);
    if (!ok) { X509_free(certificate); return NULL; }
    return certificate;
}

// PEM text of a certificate (key NULL) or of a private key (certificate NULL) into `out`; its length, or -1.
static inline long frontdoor_tls_pem(X509 *certificate, EVP_PKEY *key, unsigned char *out, long size) {
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return -1;
    int ok = certificate ? PEM_write_bio_X509(bio, certificate) : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    long result = -1;
    if (ok == 1 && length > 0 && length <= size) {
        memcpy(out, data, (size_t)length);
        result = length;
    }
    BIO_free(bio);
    return result;
}

// The first certificate, or the private key, of PEM text; NULL when there is none.
static inline X509 *frontdoor_tls_read_certificate(const void *pem, int length) {
    BIO *bio = BIO_new_mem_buf(pem, length);
    X509 *certificate = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return certificate;
}
static inline EVP_PKEY *frontdoor_tls_read_key(const void *pem, int length) {
    BIO *bio = BIO_new_mem_buf(pem, length);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return key;
}

// Serves a PEM chain (leaf first, then intermediates) and key held in memory: 1, or 0 with OpenSSL's reason
// queued.
static inline int frontdoor_tls_ctx_use_pem(SSL_CTX *ctx, const void *chain, int chainLength, const void *key, int keyLength) {
    BIO *bio = BIO_new_mem_buf(chain, chainLength);
    if (bio == NULL) return 0;
    X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    int ok = leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    X509 *next;
    while (ok && (next = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        ok = SSL_CTX_add0_chain_cert(ctx, next) == 1;
        if (!ok) X509_free(next);
    }
    if (ok) ERR_clear_error();  // the end of the chain reads as "no start line"
    BIO_free(bio);
    if (!ok) return 0;
    EVP_PKEY *privateKey = frontdoor_tls_read_key(key, keyLength);
    ok = privateKey != NULL && SSL_CTX_use_PrivateKey(ctx, privateKey) == 1;
    EVP_PKEY_free(privateKey);
    return ok;
}

// A socket BIO whose writes never raise SIGPIPE: OpenSSL's own writes with write(2), which kills a process
// that does not ignore SIGPIPE when the peer has gone (a test process, a library user). Everything else is
// the socket BIO's.
#include <stdatomic.h>
#include <sys/socket.h>
#include <errno.h>

static inline int frontdoor_tls_socket_write(BIO *bio, const char *data, int length) {
    int fd = -1;
    BIO_get_fd(bio, &fd);
    int written;
    do {
        written = (int)send(fd, data, (size_t)length, MSG_NOSIGNAL);
    } while (written < 0 && errno == EINTR);
    BIO_clear_retry_flags(bio);
    if (written <= 0 && BIO_sock_should_retry(written)) BIO_set_retry_write(bio);
    return written;
}

static inline int frontdoor_tls_socket_puts(BIO *bio, const char *text) {
    return frontdoor_tls_socket_write(bio, text, (int)strlen(text));
}

// Bytes already taken from the socket before TLS started (a ClientHello read to route SNI passthrough),
// handed to OpenSSL before anything more is read.
struct frontdoor_tls_prefix {
    size_t length;
    size_t offset;
    unsigned char bytes[];
};

static inline int frontdoor_tls_socket_read(BIO *bio, char *out, int size) {
    struct frontdoor_tls_prefix *prefix = BIO_get_data(bio);
    if (prefix != NULL && size > 0) {
        size_t count = prefix->length - prefix->offset;
        if (count > (size_t)size) count = (size_t)size;
        memcpy(out, prefix->bytes + prefix->offset, count);
        prefix->offset += count;
        if (prefix->offset == prefix->length) {
            BIO_set_data(bio, NULL);
            free(prefix);
        }
        BIO_clear_retry_flags(bio);
        return (int)count;
    }
    int fd = -1;
    BIO_get_fd(bio, &fd);
    int got;
    do {
        got = (int)recv(fd, out, (size_t)size, 0);
    } while (got < 0 && errno == EINTR);
    BIO_clear_retry_flags(bio);
    if (got <= 0) {
        if (BIO_sock_should_retry(got)) BIO_set_retry_read(bio);
        else if (got == 0) BIO_set_flags(bio, BIO_FLAGS_IN_EOF);
    }
    return got;
}

static inline int frontdoor_tls_socket_destroy(BIO *bio) {
    free(BIO_get_data(bio));
    BIO_set_data(bio, NULL);
    return BIO_meth_get_destroy(BIO_s_socket())(bio);
}

// The method, made once (a racing second one is dropped).
static inline BIO_METHOD *frontdoor_tls_socket_method(void) {
    static BIO_METHOD *_Atomic shared = NULL;
    BIO_METHOD *current = atomic_load(&shared);
    if (current != NULL) return current;
    const BIO_METHOD *socket = BIO_s_socket();
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                      "frontdoor socket");
    if (method == NULL) return NULL;
    BIO_meth_set_write(method, frontdoor_tls_socket_write);
    BIO_meth_set_puts(method, frontdoor_tls_socket_puts);
    BIO_meth_set_read(method, frontdoor_tls_socket_read);
    BIO_meth_set_ctrl(method, BIO_meth_get_ctrl(socket));
    BIO_meth_set_create(method, BIO_meth_get_create(socket));
    BIO_meth_set_destroy(method, frontdoor_tls_socket_destroy);
    BIO_METHOD *expected = NULL;
    if (!atomic_compare_exchange_strong(&shared, &expected, method)) {
        BIO_meth_free(method);
        return expected;
    }
    return method;
}

// Puts `ssl` on socket `fd` (not closed with it) through the SIGPIPE-free BIO, `prefix` (`length` bytes,
// may be none) read first: 1, or 0.
static inline int frontdoor_tls_set_socket(SSL *ssl, int fd, const void *prefix, size_t length) {
    BIO_METHOD *method = frontdoor_tls_socket_method();
    if (method == NULL) return 0;
    BIO *bio = BIO_new(method);
    if (bio == NULL) return 0;
    BIO_set_fd(bio, fd, BIO_NOCLOSE);
    if (length > 0) {
        struct frontdoor_tls_prefix *copy = malloc(sizeof *copy + length);
        if (copy == NULL) {
            BIO_free(bio);
            return 0;
        }
        copy->length = length;
        copy->offset = 0;
        memcpy(copy->bytes, prefix, length);
        BIO_set_data(bio, copy);
    }
    SSL_set_bio(ssl, bio, bio);
    return 1;
}

// Session-ticket keys (Sources/TLS/TicketKeys.swift): made in memory, never written, rotated. New tickets are
// sealed with `current`; tickets sealed with `previous` still open (and are replaced by a new one), so a
// rotation costs no client a full handshake. AES-256-CBC + HMAC-SHA256, as OpenSSL's own ticket format.
#include <openssl/core_names.h>
struct frontdoor_ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
};
struct frontdoor_ticket_ring {
    struct frontdoor_ticket_key current;
    struct frontdoor_ticket_key previous;
    int hasPrevious;
};

// The SSL ex_data slot holding a connection's ring (an SSL's SNI switch changes its SSL_CTX, not this).
static inline int frontdoor_ticket_index(void) {
    static _Atomic int index = -1;
    int current = atomic_load(&index);
    if (current >= 0) return current;
    int made = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    int expected = -1;
    if (!atomic_compare_exchange_strong(&index, &expected, made)) return expected;
    return made;
}

static inline int frontdoor_ticket_mac(EVP_MAC_CTX *mac, unsigned char *key) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(mac, params);
}

static inline int frontdoor_ticket_callback(SSL *ssl, unsigned char name[16], unsigned char *iv,
                                            EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int encrypt) {
    struct frontdoor_ticket_ring *ring = SSL_get_ex_data(ssl, frontdoor_ticket_index());
    if (ring == NULL) return -1;
    if (encrypt) {
        if (RAND_bytes(iv, 16) != 1) return -1;
        memcpy(name, ring->current.name, 16);
        if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, ring->current.aes, iv) != 1) return -1;
        return frontdoor_ticket_mac(mac, ring->current.hmac) == 1 ? 1 : -1;
    }
    struct frontdoor_ticket_key *key = NULL;
    if (memcmp(name, ring->current.name, 16) == 0) {
        key = &ring->current;
    } else if (ring->hasPrevious && memcmp(name, ring->previous.name, 16) == 0) {
        key = &ring->previous;
    }
    if (key == NULL) return 0;  // unknown or rotated out: a full handshake
    if (frontdoor_ticket_mac(mac, key->hmac) != 1) return -1;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, key->aes, iv) != 1) return -1;
    // Valid; a fresh ticket goes out all the same (2, "renew"). With 1, OpenSSL sends a TLS 1.3 client that
    // resumed no new ticket, and a client treats tickets as single-use: its next connection had none left
    // and made a full handshake (every other connection, measured with tlsload).
    return 2;
}

// Fills `key` with fresh random bytes: 1, or 0.
static inline int frontdoor_ticket_key_fill(struct frontdoor_ticket_key *key) {
    return RAND_bytes((unsigned char *)key, sizeof *key) == 1;
}
static inline void frontdoor_tls_ctx_use_ticket_ring(SSL_CTX *ctx) {
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, frontdoor_ticket_callback);
}
static inline int frontdoor_tls_attach_ticket_ring(SSL *ssl, struct frontdoor_ticket_ring *ring) {
    return SSL_set_ex_data(ssl, frontdoor_ticket_index(), ring);
}

// TLS to backends (Sources/TLS/TLSClient.swift): SNI `name` (NULL: none) and the identity the certificate must
// carry, `name` or else the IP address text `ip` (both NULL: not checked). 1, or 0.
static inline int frontdoor_tls_client_identity(SSL *ssl, const char *name, const char *ip) {
    if (name != NULL) return SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
    if (ip != NULL) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1;
    return 1;
}
// Why the peer's certificate was refused ("certificate has expired"), or NULL when it was not.
static inline const char *frontdoor_tls_verify_failure(const SSL *ssl) {
    long result = SSL_get_verify_result(ssl);
    return result == X509_V_OK ? NULL : X509_verify_cert_error_string(result);
}

// ACME (Sources/ACME): ES256 signatures for JWS, the account key's public point for its JWK, SHA-256, a CSR,
// and what the renewal needs to know of an issued certificate.

// SHA-256 of `length` bytes into `out` (32 bytes): 1, or 0.
static inline int frontdoor_sha256(const void *data, size_t length, unsigned char *out) {
    unsigned int size = 32;
    return EVP_Digest(data, length, out, &size, EVP_sha256(), NULL) == 1 && size == 32;
}

// The ES256 signature of `length` bytes (RFC 7518 §3.4: r and s, 32 bytes each, big-endian) into `out` (64
// bytes): 1, or 0.
static inline int frontdoor_es256_sign(EVP_PKEY *key, const void *data, size_t length, unsigned char *out) {
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t derLength = sizeof der;
    int ok = context != NULL && EVP_DigestSignInit(context, NULL, EVP_sha256(), NULL, key) == 1
        && EVP_DigestSign(context, der, &derLength, data, length) == 1;
    EVP_MD_CTX_free(context);
    if (!ok) return 0;
    const unsigned char *cursor = der;
    ECDSA_SIG *signature = d2i_ECDSA_SIG(NULL, &cursor, (long)derLength);
    if (signature == NULL) return 0;
    ok = BN_bn2binpad(ECDSA_SIG_get0_r(signature), out, 32) == 32
        && BN_bn2binpad(ECDSA_SIG_get0_s(signature), out + 32, 32) == 32;
    ECDSA_SIG_free(signature);
    return ok;
}

// The uncompressed public point of a P-256 key (0x04, x, y: 65 bytes) into `out`: 1, or 0.
static inline int frontdoor_ec_public_point(EVP_PKEY *key, unsigned char *out) {
    size_t length = 0;
    return EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, out, 65, &length) == 1 && length == 65
        && out[0] == 0x04;
}

// A DER certificate signing request for `key` naming the DNS names in `names` (newline-separated; the first
// is also the subject's CN when it fits), signed with SHA-256, into `out`: its length, or -1.
static inline long frontdoor_csr_der(EVP_PKEY *key, const char *names, unsigned char *out, long size) {
    X509_REQ *request = X509_REQ_new();
    char *list = strdup(names);
    char *alt = malloc(strlen(names) * 2 + 16);
    long result = -1;
    int ok = request != NULL && list != NULL && alt != NULL && X509_REQ_set_version(request, 0) == 1
        && X509_REQ_set_pubkey(request, key) == 1;
    if (ok) {
        alt[0] = 0;
        char *cursor = list;
        char *name;
        int first = 1;
        while ((name = strsep(&cursor, "\n")) != NULL) {
            if (*name == 0) continue;
            if (first && strlen(name) <= 64) {
                X509_NAME *subject = X509_REQ_get_subject_name(request);
                ok = ok && X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0) == 1;
            }
            if (!first) strcat(alt, ",");
            strcat(alt, "DNS:");
            strcat(alt, name);
            first = 0;
        }
        ok = ok && !first;
    }
    if (ok) {
        STACK_OF(X509_EXTENSION) *extensions = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *extension = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, alt);
        ok = extensions != NULL && extension != NULL && sk_X509_EXTENSION_push(extensions, extension) > 0;
        if (ok) {
            ok = X509_REQ_add_extensions(request, extensions) == 1;
            sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
        } else {
            X509_EXTENSION_free(extension);
            sk_X509_EXTENSION_free(extensions);
        }
    }
    ok = ok && X509_REQ_sign(request, key, EVP_sha256()) > 0;
    if (ok) {
        int length = i2d_X509_REQ(request, NULL);
        if (length > 0 && length <= size) {
            unsigned char *cursor = out;
            result = i2d_X509_REQ(request, &cursor);
        }
    }
    X509_REQ_free(request);
    free(list);
    free(alt);
    return result;
}

// Seconds since the epoch of a certificate's notBefore (which 0) or notAfter (which 1); -1 when unreadable.
static inline long long frontdoor_certificate_time(X509 *certificate, int which) {
    const ASN1_TIME *time = which ? X509_get0_notAfter(certificate) : X509_get0_notBefore(certificate);
    struct tm parts;
    if (time == NULL || ASN1_TIME_to_tm(time, &parts) != 1) return -1;
    return (long long)timegm(&parts);
}

// The certificate's serial number (its DER content octets) into `out`: the length, or -1.
static inline int frontdoor_certificate_serial(X509 *certificate, unsigned char *out, int size) {
    const ASN1_INTEGER *serial = X509_get0_serialNumber(certificate);
    int length = serial ? ASN1_STRING_length(serial) : -1;
    if (length <= 0 || length > size) return -1;
    memcpy(out, ASN1_STRING_get0_data(serial), (size_t)length);
    // A positive serial whose top bit is set carries a leading zero octet in DER.
    if (out[0] & 0x80) {
        if (length + 1 > size) return -1;
        memmove(out + 1, out, (size_t)length);
        out[0] = 0;
        length += 1;
    }
    return length;
}

// The keyIdentifier of the certificate's authorityKeyIdentifier into `out`: the length, or -1 (none).
static inline int frontdoor_certificate_authority_key_id(X509 *certificate, unsigned char *out, int size) {
    const ASN1_OCTET_STRING *identifier = X509_get0_authority_key_id(certificate);
    int length = identifier ? ASN1_STRING_length(identifier) : -1;
    if (length <= 0 || length > size) return -1;
    memcpy(out, ASN1_STRING_get0_data(identifier), (size_t)length);
    return length;
}
#endif
#endif
