#ifndef FRONTDOOR_FUZZ_DRIVER_H
#define FRONTDOOR_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver, for targets whose `main` is their own (SwiftPM renames an executable's main).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

/// Calls the driver; a plain C function so Swift need not spell the `char ***`.
int frontdoor_run_fuzzer(int argc, char **argv, int (*callback)(const uint8_t *data, size_t size));
#endif
