#ifndef SUTRA_CRC32C_H
#define SUTRA_CRC32C_H
#include <stddef.h>
#include <stdint.h>
/// Extends a CRC32C (Castagnoli) over `len` bytes. Start with crc = 0; the result is final (pre/post-inverted),
/// so crc(a ‖ b) == sutra_crc32c_extend(sutra_crc32c_extend(0, a), b). Uses the SSE4.2 instruction when the CPU has it.
uint32_t sutra_crc32c_extend(uint32_t crc, const void *data, size_t len);
/// The portable table-driven path (slicing-by-8), exposed so tests can check both paths agree.
uint32_t sutra_crc32c_extend_sw(uint32_t crc, const void *data, size_t len);
/// 1 if the hardware path is in use.
int sutra_crc32c_hw_available(void);
#endif
