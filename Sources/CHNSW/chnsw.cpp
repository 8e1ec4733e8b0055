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
#include <limits>
#include <memory>
#include <queue>
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

// Runs `body`, turning any C++ exception into a message in `err` and a non-zero return (they never cross into
// Swift).
template <typename Body> static int guarded(char *err, size_t errlen, Body body) {
    try {
        body();
        return 0;
    } catch (const std::exception &e) {
        set_err(err, errlen, e.what());
    } catch (...) {
        set_err(err, errlen, "unknown C++ exception");
    }
    return 1;
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
    // In double: 1/norm of a subnormal vector (norm < ~2.9e-39) overflows a float to inf, and inf × 0 is NaN.
    double inv = norm > 0 ? 1.0 / norm : 0.0;
    for (int32_t i = 0; i < h->dim; i++) h->scratch[i] = float(double(v[i]) * inv);
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
    return guarded(err, errlen, [&] {
        h->index->addPoint(prepare(h, vector), static_cast<hnswlib::labeltype>(label));
    });
}

int sutra_hnsw_delete(sutra_hnsw *h, uint64_t label, char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
        h->index->markDelete(static_cast<hnswlib::labeltype>(label));
    });
}

int sutra_hnsw_search(sutra_hnsw *h, const float *query, size_t k, size_t ef, uint64_t *labels, float *distances,
                      size_t *found, char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
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
    });
}

// A max-heap of (distance, internal id): its top is the farthest result held.
using ResultHeap = std::priority_queue<std::pair<float, hnswlib::tableint>>;

static void emit(ResultHeap &results, hnswlib::HierarchicalNSW<float> *ix, uint64_t *labels, float *distances,
                 size_t *found) {
    size_t n = results.size();
    *found = n;
    for (size_t i = n; i > 0; i--) {
        labels[i - 1] = static_cast<uint64_t>(ix->getExternalLabel(results.top().second));
        distances[i - 1] = results.top().first;
        results.pop();
    }
}

static bool allowed(hnswlib::HierarchicalNSW<float> *ix, hnswlib::tableint id, sutra_hnsw_filter filter, void *ctx) {
    if (ix->isMarkedDeleted(id)) return false;
    return filter == nullptr || filter(ctx, static_cast<uint64_t>(ix->getExternalLabel(id))) != 0;
}

int sutra_hnsw_search_exact(sutra_hnsw *h, const float *query, size_t k, sutra_hnsw_filter filter, void *ctx,
                            uint64_t *labels, float *distances, size_t *found, char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
        auto *ix = h->index.get();
        const float *q = prepare(h, query);
        ResultHeap results;
        size_t count = ix->cur_element_count;
        for (size_t i = 0; i < count && k > 0; i++) {
            auto id = static_cast<hnswlib::tableint>(i);
            if (!allowed(ix, id, filter, ctx)) continue;
            float d = ix->fstdistfunc_(q, ix->getDataByInternalId(id), ix->dist_func_param_);
            if (results.size() < k) {
                results.emplace(d, id);
            } else if (d < results.top().first) {
                results.pop();
                results.emplace(d, id);
            }
        }
        emit(results, ix, labels, distances, found);
    });
}

int sutra_hnsw_search_labels(sutra_hnsw *h, const float *query, size_t k, const uint64_t *candidates, size_t count,
                             uint64_t *labels, float *distances, size_t *found, char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
        auto *ix = h->index.get();
        const float *q = prepare(h, query);
        ResultHeap results;
        for (size_t i = 0; i < count && k > 0; i++) {
            auto at = ix->label_lookup_.find(static_cast<hnswlib::labeltype>(candidates[i]));
            if (at == ix->label_lookup_.end() || ix->isMarkedDeleted(at->second)) continue;
            float d = ix->fstdistfunc_(q, ix->getDataByInternalId(at->second), ix->dist_func_param_);
            if (results.size() < k) {
                results.emplace(d, at->second);
            } else if (d < results.top().first) {
                results.pop();
                results.emplace(d, at->second);
            }
        }
        emit(results, ix, labels, distances, found);
    });
}

int sutra_hnsw_search_filtered(sutra_hnsw *h, const float *query, size_t k, size_t ef, sutra_hnsw_filter filter,
                               void *ctx, uint64_t *labels, float *distances, size_t *found, char *err,
                               size_t errlen) {
    return guarded(err, errlen, [&] {
        auto *ix = h->index.get();
        *found = 0;
        if (ix->cur_element_count == 0 || k == 0) return;
        if (ef < k) ef = k;
        const float *q = prepare(h, query);
        // Upper layers: greedy descent to the base layer's entry point (no filter: they only route).
        hnswlib::tableint current = ix->enterpoint_node_;
        float currentDistance = ix->fstdistfunc_(q, ix->getDataByInternalId(current), ix->dist_func_param_);
        for (int level = ix->maxlevel_; level > 0; level--) {
            bool moved = true;
            while (moved) {
                moved = false;
                unsigned int *list = reinterpret_cast<unsigned int *>(ix->get_linklist(current, level));
                int size = ix->getListCount(list);
                auto *neighbours = reinterpret_cast<hnswlib::tableint *>(list + 1);
                for (int i = 0; i < size; i++) {
                    hnswlib::tableint n = neighbours[i];
                    if (n >= ix->cur_element_count) throw std::runtime_error("a link points past the elements");
                    float d = ix->fstdistfunc_(q, ix->getDataByInternalId(n), ix->dist_func_param_);
                    if (d < currentDistance) {
                        currentDistance = d;
                        current = n;
                        moved = true;
                    }
                }
            }
        }
        // Base layer: a beam search whose frontier holds every vector, and whose results only allowed ones.
        hnswlib::VisitedList *visited = ix->visited_list_pool_->getFreeVisitedList();
        hnswlib::vl_type *mark = visited->mass;
        hnswlib::vl_type tag = visited->curV;
        std::priority_queue<std::pair<float, hnswlib::tableint>> frontier;  // (-distance): nearest on top
        ResultHeap results;
        float bound = std::numeric_limits<float>::max();
        frontier.emplace(-currentDistance, current);
        mark[current] = tag;
        if (allowed(ix, current, filter, ctx)) {
            results.emplace(currentDistance, current);
            if (results.size() == ef) bound = results.top().first;
        }
        while (!frontier.empty()) {
            auto [negative, node] = frontier.top();
            if (-negative > bound && results.size() >= ef) break;
            frontier.pop();
            auto *list = ix->get_linklist0(node);
            size_t size = ix->getListCount(list);
            auto *neighbours = reinterpret_cast<hnswlib::tableint *>(list + 1);
            for (size_t j = 0; j < size; j++) {
                hnswlib::tableint n = neighbours[j];
                if (n >= ix->cur_element_count) {
                    ix->visited_list_pool_->releaseVisitedList(visited);
                    throw std::runtime_error("a link points past the elements");
                }
                if (mark[n] == tag) continue;
                mark[n] = tag;
                float d = ix->fstdistfunc_(q, ix->getDataByInternalId(n), ix->dist_func_param_);
                if (results.size() < ef || d < bound) {
                    frontier.emplace(-d, n);
                    if (allowed(ix, n, filter, ctx)) {
                        results.emplace(d, n);
                        if (results.size() > ef) results.pop();
                        if (results.size() == ef) bound = results.top().first;
                    }
                }
            }
        }
        ix->visited_list_pool_->releaseVisitedList(visited);
        while (results.size() > k) results.pop();
        emit(results, ix, labels, distances, found);
    });
}

int sutra_hnsw_resize(sutra_hnsw *h, size_t capacity, char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
        h->index->resizeIndex(capacity);
    });
}

int sutra_hnsw_save(sutra_hnsw *h, const char *path, char *err, size_t errlen) {
    return guarded(err, errlen, [&] {
        h->index->saveIndex(std::string(path));
    });
}

size_t sutra_hnsw_count(const sutra_hnsw *h) { return h->index->cur_element_count; }
size_t sutra_hnsw_deleted(const sutra_hnsw *h) { return h->index->num_deleted_; }
size_t sutra_hnsw_capacity(const sutra_hnsw *h) { return h->index->max_elements_; }

}  // extern "C"

#ifdef SUTRA_HNSW_TARGET_PUSHED
#pragma clang attribute pop
#endif
