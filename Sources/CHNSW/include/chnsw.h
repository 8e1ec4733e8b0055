#ifndef SUTRA_CHNSW_H
#define SUTRA_CHNSW_H
// A plain C API over hnswlib (Debian libhnswlib-dev). Every call catches C++ exceptions and reports them as a
// non-zero return with a message in `err` (NUL-terminated, truncated to errlen). Not thread-safe: one index,
// one thread at a time.
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sutra_hnsw sutra_hnsw;

/// metric: 0 = squared L2, 1 = cosine distance (1 - cosine similarity; vectors are normalized internally).
sutra_hnsw *sutra_hnsw_new(int32_t dim, int32_t metric, size_t capacity, size_t m, size_t ef_construction,
                           uint64_t seed, char *err, size_t errlen);
sutra_hnsw *sutra_hnsw_load(const char *path, int32_t dim, int32_t metric, size_t capacity, char *err, size_t errlen);
void sutra_hnsw_free(sutra_hnsw *index);

/// Inserts or replaces the vector of `label` (un-deleting it if it was deleted).
int sutra_hnsw_upsert(sutra_hnsw *index, uint64_t label, const float *vector, char *err, size_t errlen);
/// Marks `label` deleted (it is skipped by searches). Returns 1 (with a message) if the label is unknown.
int sutra_hnsw_delete(sutra_hnsw *index, uint64_t label, char *err, size_t errlen);
/// Up to k nearest, nearest first, into labels/distances; *found receives how many.
int sutra_hnsw_search(sutra_hnsw *index, const float *query, size_t k, size_t ef, uint64_t *labels, float *distances,
                      size_t *found, char *err, size_t errlen);
/// Decides whether the vector under `label` may be a result (non-zero: yes). `ctx` is passed through unchanged.
typedef int (*sutra_hnsw_filter)(void *ctx, uint64_t label);
/// Exact k nearest: every live vector (those `filter` allows, when it is not NULL) is compared with the query;
/// nearest first into labels/distances, *found receives how many (min(k, allowed live vectors)).
int sutra_hnsw_search_exact(sutra_hnsw *index, const float *query, size_t k, sutra_hnsw_filter filter, void *ctx,
                            uint64_t *labels, float *distances, size_t *found, char *err, size_t errlen);
/// Exact k nearest among the `count` labels in `candidates` (unknown or removed ones skipped): only those vectors
/// are read, so a filter that passes few costs what it passes. Nearest first; *found receives how many.
int sutra_hnsw_search_labels(sutra_hnsw *index, const float *query, size_t k, const uint64_t *candidates, size_t count,
                             uint64_t *labels, float *distances, size_t *found, char *err, size_t errlen);
/// Approximate k nearest among the vectors `filter` allows: the graph is walked through every vector (so it stays
/// connected), but only allowed ones become results, and the walk goes on until `ef` allowed ones are held or
/// nothing nearer is reachable. Nearest first; *found receives how many (it may be below k when few are allowed).
int sutra_hnsw_search_filtered(sutra_hnsw *index, const float *query, size_t k, size_t ef, sutra_hnsw_filter filter,
                               void *ctx, uint64_t *labels, float *distances, size_t *found, char *err,
                               size_t errlen);
int sutra_hnsw_resize(sutra_hnsw *index, size_t capacity, char *err, size_t errlen);
int sutra_hnsw_save(sutra_hnsw *index, const char *path, char *err, size_t errlen);
size_t sutra_hnsw_count(const sutra_hnsw *index);      // elements ever added (deleted ones included)
size_t sutra_hnsw_deleted(const sutra_hnsw *index);
size_t sutra_hnsw_capacity(const sutra_hnsw *index);

#ifdef __cplusplus
}
#endif
#endif
