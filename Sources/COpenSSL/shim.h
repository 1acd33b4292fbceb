// The project's single TLS and crypto boundary: the system OpenSSL (libssl-dev at build time).
#ifndef FRONTDOOR_COPENSSL_H
#define FRONTDOOR_COPENSSL_H
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif
