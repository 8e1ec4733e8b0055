// C API over hnswlib. C++ exceptions never cross into Swift: each entry point catches and reports them.
#include "chnsw.h"
// hnswlib chooses its AVX kernels when __AVX__ is defined (and checks the CPU at run time). The AVX2/FMA target
// is set here, for this file's functions only, instead of -mavx2 -mfma on the command line: SwiftPM refuses such
// unsafe flags in a package that another depends on by version (the SDK's package is this one).
#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute push (__attribute__((target("avx2,fma"))), apply_to = function)
#define SUTRA_HNSW_TARGET_PUSHED 1
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __SSE__
#define __SSE__ 1
#endif
#endif
#include <hnswlib/hnswlib.h>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

struct sutra_hnsw {
    int32_t dim;
    int32_t metric;
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
    std::vector<float> scratch;   // normalized copy for cosine
};

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen > 0) {
        std::strncpy(err, msg, errlen - 1);
        err[errlen - 1] = 0;
    }
}

static hnswlib::SpaceInterface<float> *make_space(int32_t dim, int32_t metric) {
    if (metric == 1) return new hnswlib::InnerProductSpace(static_cast<size_t>(dim));
    return new hnswlib::L2Space(static_cast<size_t>(dim));
}

// For cosine, hnswlib's inner-product distance (1 - dot) on unit vectors is the cosine distance.
static const float *prepare(sutra_hnsw *h, const float *v) {
    if (h->metric != 1) return v;
    double norm = 0;
    for (int32_t i = 0; i < h->dim; i++) norm += double(v[i]) * double(v[i]);
    norm = std::sqrt(norm);
    float inv = norm > 0 ? float(1.0 / norm) : 0.0f;
    for (int32_t i = 0; i < h->dim; i++) h->scratch[i] = v[i] * inv;
    return h->scratch.data();
}

extern "C" {

sutra_hnsw *sutra_hnsw_new(int32_t dim, int32_t metric, size_t capacity, size_t m, size_t ef_construction,
                           uint64_t seed, char *err, size_t errlen) {
    if (dim <= 0 || (metric != 0 && metric != 1) || capacity == 0) {
        set_err(err, errlen, "invalid dimension, metric or capacity");
        return nullptr;
    }
    try {
        auto h = std::make_unique<sutra_hnsw>();
        h->dim = dim;
        h->metric = metric;
        h->scratch.resize(static_cast<size_t>(dim));
        h->space.reset(make_space(dim, metric));
        h->index.reset(new hnswlib::HierarchicalNSW<float>(h->space.get(), capacity, m, ef_construction, seed));
        return h.release();
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return nullptr;
}

sutra_hnsw *sutra_hnsw_load(const char *path, int32_t dim, int32_t metric, size_t capacity, char *err, size_t errlen) {
    if (dim <= 0 || (metric != 0 && metric != 1)) {
        set_err(err, errlen, "invalid dimension or metric");
        return nullptr;
    }
    try {
        auto h = std::make_unique<sutra_hnsw>();
        h->dim = dim;
        h->metric = metric;
        h->scratch.resize(static_cast<size_t>(dim));
        h->space.reset(make_space(dim, metric));
        h->index.reset(new hnswlib::HierarchicalNSW<float>(h->space.get(), std::string(path), false, capacity));
        return h.release();
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return nullptr;
}

void sutra_hnsw_free(sutra_hnsw *index) { delete index; }

int sutra_hnsw_upsert(sutra_hnsw *h, uint64_t label, const float *vector, char *err, size_t errlen) {
    try {
        h->index->addPoint(prepare(h, vector), static_cast<hnswlib::labeltype>(label));
        return 0;
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return 1;
}

int sutra_hnsw_delete(sutra_hnsw *h, uint64_t label, char *err, size_t errlen) {
    try {
        h->index->markDelete(static_cast<hnswlib::labeltype>(label));
        return 0;
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return 1;
}

int sutra_hnsw_search(sutra_hnsw *h, const float *query, size_t k, size_t ef, uint64_t *labels, float *distances,
                      size_t *found, char *err, size_t errlen) {
    try {
        h->index->setEf(ef < k ? k : ef);
        auto result = h->index->searchKnn(prepare(h, query), k);
        size_t n = result.size();
        *found = n;
        // The queue pops the farthest first: fill from the back so the output is nearest first.
        for (size_t i = n; i > 0; i--) {
            labels[i - 1] = static_cast<uint64_t>(result.top().second);
            distances[i - 1] = result.top().first;
            result.pop();
        }
        return 0;
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return 1;
}

int sutra_hnsw_resize(sutra_hnsw *h, size_t capacity, char *err, size_t errlen) {
    try {
        h->index->resizeIndex(capacity);
        return 0;
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return 1;
}

int sutra_hnsw_save(sutra_hnsw *h, const char *path, char *err, size_t errlen) {
    try {
        h->index->saveIndex(std::string(path));
        return 0;
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return 1;
}

size_t sutra_hnsw_count(const sutra_hnsw *h) { return h->index->cur_element_count; }
size_t sutra_hnsw_deleted(const sutra_hnsw *h) { return h->index->num_deleted_; }
size_t sutra_hnsw_capacity(const sutra_hnsw *h) { return h->index->max_elements_; }

}  // extern "C"

#ifdef SUTRA_HNSW_TARGET_PUSHED
#pragma clang attribute pop
#endif
