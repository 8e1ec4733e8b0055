// See include/ctls.h. OpenSSL 3 only (Debian libssl-dev).
#include "ctls.h"
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/bn.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct ctls_session {
    SSL *ssl;
    BIO *in;   // ciphertext received from the peer, read by OpenSSL
    BIO *out;  // ciphertext OpenSSL produced, to send to the peer
};

static void put_err(char *err, size_t errlen, const char *what) {
    if (!err || errlen == 0) { ERR_clear_error(); return; }
    size_t used = (size_t)snprintf(err, errlen, "%s", what);
    unsigned long e;
    while ((e = ERR_get_error()) != 0 && used + 3 < errlen) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        used += (size_t)snprintf(err + used, errlen - used, ": %s", buf);
    }
    ERR_clear_error();
}

CTLSContext *ctls_context_new(int is_server, const char *cert, const char *key, const char *ca,
                              int verify, int min_tls13, char *err, size_t errlen) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    if (!ctx) { put_err(err, errlen, "SSL_CTX_new"); return NULL; }
    if (!SSL_CTX_set_min_proto_version(ctx, min_tls13 ? TLS1_3_VERSION : TLS1_2_VERSION)) {
        put_err(err, errlen, "minimum protocol version"); SSL_CTX_free(ctx); return NULL;
    }
    if (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        char what[600]; snprintf(what, sizeof what, "cannot load certificate chain %s", cert);
        put_err(err, errlen, what); SSL_CTX_free(ctx); return NULL;
    }
    if (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        char what[600]; snprintf(what, sizeof what, "cannot load private key %s", key);
        put_err(err, errlen, what); SSL_CTX_free(ctx); return NULL;
    }
    if (cert && key && SSL_CTX_check_private_key(ctx) != 1) {
        char what[1300]; snprintf(what, sizeof what, "private key %s does not match certificate %s", key, cert);
        put_err(err, errlen, what); SSL_CTX_free(ctx); return NULL;
    }
    if (ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        char what[600]; snprintf(what, sizeof what, "cannot load CA bundle %s", ca);
        put_err(err, errlen, what); SSL_CTX_free(ctx); return NULL;
    }
    int mode = SSL_VERIFY_NONE;
    if (verify == 1) mode = SSL_VERIFY_PEER;
    if (verify == 2) mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    // Long-lived connections: no resumption tickets or session cache; smaller idle buffers.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    return ctx;
}

void ctls_context_free(CTLSContext *ctx) { SSL_CTX_free(ctx); }

CTLSSession *ctls_session_new(CTLSContext *ctx, int is_server, char *err, size_t errlen) {
    ERR_clear_error();
    CTLSSession *s = calloc(1, sizeof *s);
    if (!s) { put_err(err, errlen, "out of memory"); return NULL; }
    s->ssl = SSL_new(ctx);
    s->in = BIO_new(BIO_s_mem());
    s->out = BIO_new(BIO_s_mem());
    if (!s->ssl || !s->in || !s->out) {
        put_err(err, errlen, "SSL_new");
        SSL_free(s->ssl); BIO_free(s->in); BIO_free(s->out); free(s);
        return NULL;
    }
    // An empty input BIO means "wait for more", never end of file.
    BIO_set_mem_eof_return(s->in, -1);
    BIO_set_mem_eof_return(s->out, -1);
    SSL_set_bio(s->ssl, s->in, s->out);  // the SSL owns both BIOs now
    if (is_server) SSL_set_accept_state(s->ssl); else SSL_set_connect_state(s->ssl);
    return s;
}

void ctls_session_free(CTLSSession *s) {
    if (!s) return;
    SSL_free(s->ssl);
    free(s);
}

int ctls_session_expect_host(CTLSSession *s, const char *host, int is_ip, char *err, size_t errlen) {
    ERR_clear_error();
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host)
                   : (SSL_set1_host(s->ssl, host) && SSL_set_tlsext_host_name(s->ssl, host));
    if (!ok) put_err(err, errlen, "cannot set the expected server name");
    return ok ? 1 : 0;
}

int ctls_feed(CTLSSession *s, const uint8_t *bytes, size_t len) {
    if (len == 0) return 0;
    if (len > 0x7fffffff) return -1;
    int n = BIO_write(s->in, bytes, (int)len);
    return n == (int)len ? n : -1;
}

size_t ctls_pending_out(CTLSSession *s) { return (size_t)BIO_ctrl_pending(s->out); }
size_t ctls_pending_in(CTLSSession *s) { return (size_t)BIO_ctrl_pending(s->in); }

size_t ctls_take(CTLSSession *s, uint8_t *out, size_t cap) {
    if (cap > 0x7fffffff) cap = 0x7fffffff;
    int n = BIO_read(s->out, out, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

static void put_ssl_err(CTLSSession *s, char *err, size_t errlen, const char *what) {
    long v = SSL_get_verify_result(s->ssl);
    if (v != X509_V_OK) {
        char buf[300];
        snprintf(buf, sizeof buf, "%s: certificate verification failed: %s", what, X509_verify_cert_error_string(v));
        put_err(err, errlen, buf);
    } else {
        put_err(err, errlen, what);
    }
}

int ctls_handshake(CTLSSession *s, char *err, size_t errlen) {
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) return CTLS_OK;
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return CTLS_WANT;
    if (e == SSL_ERROR_ZERO_RETURN) { put_err(err, errlen, "peer closed during the handshake"); return CTLS_CLOSED; }
    put_ssl_err(s, err, errlen, "handshake failed");
    return CTLS_ERROR;
}

int ctls_read(CTLSSession *s, uint8_t *out, size_t cap, size_t *n, char *err, size_t errlen) {
    // One error-queue clear per batch of records (in OpenSSL 3 each clear looks up the thread's error state).
    ERR_clear_error();
    *n = 0;
    while (*n < cap) {
        size_t got = 0;
        int r = SSL_read_ex(s->ssl, out + *n, cap - *n, &got);
        if (r == 1) { *n += got; continue; }
        int e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return CTLS_WANT;
        if (e == SSL_ERROR_ZERO_RETURN) return CTLS_CLOSED;
        put_ssl_err(s, err, errlen, "read failed");
        return CTLS_ERROR;
    }
    return CTLS_OK;
}

int ctls_write(CTLSSession *s, const uint8_t *bytes, size_t len, char *err, size_t errlen) {
    ERR_clear_error();
    size_t done = 0;
    while (done < len) {
        size_t n = 0;
        int r = SSL_write_ex(s->ssl, bytes + done, len - done, &n);
        if (r != 1) { put_ssl_err(s, err, errlen, "write failed"); return CTLS_ERROR; }
        done += n;
    }
    return CTLS_OK;
}

void ctls_shutdown(CTLSSession *s) { ERR_clear_error(); (void)SSL_shutdown(s->ssl); ERR_clear_error(); }

const char *ctls_version(CTLSSession *s) { return SSL_get_version(s->ssl); }

static int append(char *out, size_t cap, size_t *used, const char *prefix, const char *value, size_t vlen) {
    for (size_t i = 0; i < vlen; i++) if (value[i] == '\0' || value[i] == '\n') return 0;  // skip hostile names
    size_t need = strlen(prefix) + vlen + 1;
    if (*used + need + 1 > cap) return -1;
    memcpy(out + *used, prefix, strlen(prefix)); *used += strlen(prefix);
    memcpy(out + *used, value, vlen); *used += vlen;
    out[(*used)++] = '\n';
    out[*used] = '\0';
    return 0;
}

static int cert_names(X509 *cert, char *out, size_t cap);

int ctls_peer_names(CTLSSession *s, char *out, size_t cap) {
    if (cap == 0) return -1;
    out[0] = '\0';
    X509 *cert = SSL_get0_peer_certificate(s->ssl);
    if (!cert || SSL_get_verify_result(s->ssl) != X509_V_OK) return 0;
    return cert_names(cert, out, cap);
}

int ctls_context_own_names(CTLSContext *ctx, char *out, size_t cap) {
    if (cap == 0) return -1;
    out[0] = '\0';
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (!cert) return 0;
    return cert_names(cert, out, cap);
}

static int cert_names(X509 *cert, char *out, size_t cap) {
    size_t used = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && rc == 0; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_URI) {
            rc = append(out, cap, &used, "URI:", (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
                        (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier));
        } else if (gn->type == GEN_DNS) {
            rc = append(out, cap, &used, "DNS:", (const char *)ASN1_STRING_get0_data(gn->d.dNSName),
                        (size_t)ASN1_STRING_length(gn->d.dNSName));
        } else if (gn->type == GEN_IPADD) {
            char buf[64] = {0};
            int len = ASN1_STRING_length(gn->d.iPAddress);
            const unsigned char *p = ASN1_STRING_get0_data(gn->d.iPAddress);
            if ((len == 4 && inet_ntop(AF_INET, p, buf, sizeof buf)) || (len == 16 && inet_ntop(AF_INET6, p, buf, sizeof buf)))
                rc = append(out, cap, &used, "IP:", buf, strlen(buf));
        }
    }
    GENERAL_NAMES_free(names);
    if (rc != 0) return -1;
    char cn[256];
    int cnlen = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    if (cnlen > 0 && append(out, cap, &used, "CN:", cn, (size_t)cnlen) != 0) return -1;
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)timegm(&tm));
        if (append(out, cap, &used, "NOTAFTER:", buf, strlen(buf)) != 0) return -1;
    }
    return (int)used;
}

// MARK: certificate generation

static int write_key(EVP_PKEY *key, const char *path, char *err, size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { char w[600]; snprintf(w, sizeof w, "cannot create %s", path); put_err(err, errlen, w); return 0; }
    fchmod(fd, 0600);
    FILE *f = fdopen(fd, "w");
    int ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (f) ok = (fclose(f) == 0) && ok; else close(fd);
    if (!ok) { char w[600]; snprintf(w, sizeof w, "cannot write %s", path); put_err(err, errlen, w); }
    return ok;
}

static int write_cert(X509 *x, const char *path, char *err, size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { char w[600]; snprintf(w, sizeof w, "cannot create %s", path); put_err(err, errlen, w); return 0; }
    FILE *f = fdopen(fd, "w");
    int ok = f && PEM_write_X509(f, x) == 1;
    if (f) ok = (fclose(f) == 0) && ok; else close(fd);
    if (!ok) { char w[600]; snprintf(w, sizeof w, "cannot write %s", path); put_err(err, errlen, w); }
    return ok;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext) return 0;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

// A certificate with a fresh P-256 key, a random 128-bit serial and the validity window; not yet signed.
static X509 *new_cert(EVP_PKEY **key_out, const char *cn, long not_before, long not_after) {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    int ok = key && x && bn && X509_set_version(x, 2)
        && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
        && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))
        && X509_gmtime_adj(X509_getm_notBefore(x), not_before)
        && X509_gmtime_adj(X509_getm_notAfter(x), not_after)
        && X509_set_pubkey(x, key)
        && X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    BN_free(bn);
    if (!ok) { EVP_PKEY_free(key); X509_free(x); return NULL; }
    *key_out = key;
    return x;
}

int ctls_make_ca(const char *cn, long not_before, long not_after, const char *key_path, const char *cert_path,
                 char *err, size_t errlen) {
    ERR_clear_error();
    EVP_PKEY *key = NULL;
    X509 *x = new_cert(&key, cn, not_before, not_after);
    if (!x) { put_err(err, errlen, "cannot make the CA certificate"); return 0; }
    int ok = X509_set_issuer_name(x, X509_get_subject_name(x))
        && add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")
        && add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign")
        && add_ext(x, x, NID_subject_key_identifier, "hash")
        && X509_sign(x, key, EVP_sha256()) > 0;
    if (!ok) put_err(err, errlen, "cannot sign the CA certificate");
    else ok = write_key(key, key_path, err, errlen) && write_cert(x, cert_path, err, errlen);
    EVP_PKEY_free(key);
    X509_free(x);
    return ok;
}

int ctls_make_leaf(const char *ca_key_path, const char *ca_cert_path, const char *cn, const char *san,
                   long not_before, long not_after, const char *key_path, const char *cert_path,
                   char *err, size_t errlen) {
    ERR_clear_error();
    FILE *f = fopen(ca_key_path, "r");
    EVP_PKEY *ca_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    f = fopen(ca_cert_path, "r");
    X509 *ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    if (!ca_key || !ca) {
        char w[1300]; snprintf(w, sizeof w, "cannot read the CA key %s or certificate %s", ca_key_path, ca_cert_path);
        put_err(err, errlen, w); EVP_PKEY_free(ca_key); X509_free(ca); return 0;
    }
    EVP_PKEY *key = NULL;
    X509 *x = new_cert(&key, cn, not_before, not_after);
    int ok = x != NULL
        && X509_set_issuer_name(x, X509_get_subject_name(ca))
        && add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE")
        && add_ext(x, ca, NID_key_usage, "critical,digitalSignature")
        && add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth")
        && add_ext(x, ca, NID_subject_key_identifier, "hash")
        && add_ext(x, ca, NID_authority_key_identifier, "keyid:always")
        && (!san || add_ext(x, ca, NID_subject_alt_name, san))
        && X509_sign(x, ca_key, EVP_sha256()) > 0;
    if (!ok) put_err(err, errlen, "cannot make the certificate (check the subject alternative names)");
    else ok = write_key(key, key_path, err, errlen) && write_cert(x, cert_path, err, errlen);
    EVP_PKEY_free(key);
    X509_free(x);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    return ok;
}
