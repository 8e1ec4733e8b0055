// OpenSSL's libcrypto (Debian libssl-dev 3.x): SHA-256 (one-shot for tokens, EVP streaming for shard digests), the OS-seeded
// random generator and a constant-time compare. A minimal module meant to be replaced by the TLS layer's CTLS
// once that exists (same library, same calls).
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
