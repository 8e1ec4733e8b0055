#ifndef SUTRA_CRC32C_H
#define SUTRA_CRC32C_H
#include <stddef.h>
#include <stdint.h>
/// Extends a CRC32C (Castagnoli) over `len` bytes. Start with crc = 0; the result is final (pre/post-inverted).
uint32_t sutra_crc32c_extend(uint32_t crc, const void *data, size_t len);
#endif
