// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): SSE4.2 `crc32` instruction where available,
// slicing-by-8 tables otherwise. Both paths compute the same function; tests check that.
#include "crc32c.h"
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static int tables_ready = 0;

static void init_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) {
            c = table[0][c & 0xFF] ^ (c >> 8);
            table[k][n] = c;
        }
    }
    __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
}

uint32_t sutra_crc32c_extend_sw(uint32_t crc, const void *data, size_t len) {
    if (!__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE)) init_tables();  // idempotent: racing inits write equal values
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) { c = table[0][(c ^ *p++) & 0xFF] ^ (c >> 8); len--; }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint32_t lo = (uint32_t)w ^ c, hi = (uint32_t)(w >> 32);
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^ table[4][lo >> 24] ^
            table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^ table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) c = table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = (const uint8_t *)data;
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) { c = _mm_crc32_u8((uint32_t)c, *p++); len--; }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
static int hw_checked = 0, hw_ok = 0;
int sutra_crc32c_hw_available(void) {
    if (!__atomic_load_n(&hw_checked, __ATOMIC_ACQUIRE)) {
        __builtin_cpu_init();
        hw_ok = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&hw_checked, 1, __ATOMIC_RELEASE);
    }
    return hw_ok;
}
uint32_t sutra_crc32c_extend(uint32_t crc, const void *data, size_t len) {
    if (sutra_crc32c_hw_available()) return crc32c_hw(crc, data, len);
    return sutra_crc32c_extend_sw(crc, data, len);
}
#else
int sutra_crc32c_hw_available(void) { return 0; }
uint32_t sutra_crc32c_extend(uint32_t crc, const void *data, size_t len) { return sutra_crc32c_extend_sw(crc, data, len); }
#endif
