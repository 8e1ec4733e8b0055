#ifndef SUTRA_CTLS_H
#define SUTRA_CTLS_H
/* A thin C layer over OpenSSL 3 (Debian libssl-dev) for Sources/TLS: functions for what OpenSSL offers only as
 * macros, a TLS session over two memory BIOs, the verified peer certificate's names, and certificate generation
 * (ECDSA P-256). Every function reports failure by its return value and writes OpenSSL's error queue into `err`;
 * none aborts on bad input. */
#include <stddef.h>
#include <stdint.h>

typedef struct ssl_ctx_st CTLSContext;
typedef struct ctls_session CTLSSession;

/* verify: 0 = do not ask for a certificate (a server without client certs) / do not check (never used by peers),
 *         1 = verify the peer's certificate if it sends one (client side: server must send one),
 *         2 = require and verify (mutual TLS).
 * cert/key may be NULL (a client without a certificate); ca may be NULL only with verify 0. */
CTLSContext *ctls_context_new(int is_server, const char *cert_chain_path, const char *key_path, const char *ca_path,
                              int verify, int min_tls13, char *err, size_t errlen);
void ctls_context_free(CTLSContext *ctx);

/* A session over memory BIOs: ciphertext in by ctls_feed, out by ctls_take. */
CTLSSession *ctls_session_new(CTLSContext *ctx, int is_server, char *err, size_t errlen);
void ctls_session_free(CTLSSession *s);

/* A client session: the server name to send (SNI) and to require in the server's certificate (a DNS name or an
 * IP address literal). Returns 1 on success. */
int ctls_session_expect_host(CTLSSession *s, const char *host, int is_ip, char *err, size_t errlen);

/* Gives received ciphertext to the session. Returns bytes accepted (all of them) or -1. */
int ctls_feed(CTLSSession *s, const uint8_t *bytes, size_t len);
/* Bytes of ciphertext waiting to be sent. */
size_t ctls_pending_out(CTLSSession *s);
/* Copies up to cap bytes of ciphertext to send into out; returns the count. */
size_t ctls_take(CTLSSession *s, uint8_t *out, size_t cap);
/* Bytes of received ciphertext not yet processed. */
size_t ctls_pending_in(CTLSSession *s);

/* Result codes of ctls_handshake / ctls_read / ctls_write. */
enum { CTLS_OK = 0, CTLS_WANT = 1, CTLS_CLOSED = 2, CTLS_ERROR = 3 };
/* Advances the handshake: CTLS_OK once complete, CTLS_WANT if it needs more input, CTLS_ERROR (see err). */
int ctls_handshake(CTLSSession *s, char *err, size_t errlen);
/* Decrypts every whole record buffered into out (up to cap); *n = bytes produced (also on CLOSED and WANT).
 * CTLS_WANT: the input holds no further whole record (the usual end); CTLS_OK: out is full and more may follow
 * (call again); CTLS_CLOSED (close_notify, after *n bytes), CTLS_ERROR (see err). Plaintext never exceeds the
 * ciphertext it came from, so cap >= ctls_pending_in() reads everything in one call. */
int ctls_read(CTLSSession *s, uint8_t *out, size_t cap, size_t *n, char *err, size_t errlen);
/* Encrypts len bytes (all or error). */
int ctls_write(CTLSSession *s, const uint8_t *bytes, size_t len, char *err, size_t errlen);
/* Queues a close_notify alert. */
void ctls_shutdown(CTLSSession *s);
/* The negotiated protocol, e.g. "TLSv1.3". */
const char *ctls_version(CTLSSession *s);

/* The verified peer certificate's subject alternative names, one per line as "URI:…", "DNS:…", "IP:…", plus
 * "CN:…" and "NOTAFTER:<unix seconds>". Written into out (NUL-terminated); returns the length, 0 if there is no
 * verified peer certificate, or -1 if out is too small. */
int ctls_peer_names(CTLSSession *s, char *out, size_t cap);
/* The same names of the context's own certificate (0 if it has none). */
int ctls_context_own_names(CTLSContext *ctx, char *out, size_t cap);

/* Certificate generation (ECDSA P-256, SHA-256). Keys are written with mode 0600, certificates 0644.
 * not_before / not_after are offsets in seconds from now. san: OpenSSL's syntax, e.g.
 * "URI:sutra://c/node/1,DNS:localhost,IP:127.0.0.1" (NULL for none). */
int ctls_make_ca(const char *common_name, long not_before, long not_after,
                 const char *key_path, const char *cert_path, char *err, size_t errlen);
int ctls_make_leaf(const char *ca_key_path, const char *ca_cert_path, const char *common_name, const char *san,
                   long not_before, long not_after, const char *key_path, const char *cert_path,
                   char *err, size_t errlen);
#endif
