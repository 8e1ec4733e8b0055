// libFuzzer's driver entry point (compiler-rt), so a Swift executable's own main can run the fuzzer; linked
// from libclang_rt.fuzzer by `-sanitize=fuzzer` (scripts/fuzz.sh).
#include <stddef.h>
#include <stdint.h>

typedef int (*sutra_fuzz_callback)(const uint8_t *data, size_t size);
int LLVMFuzzerRunDriver(int *argc, char ***argv, sutra_fuzz_callback callback);
