/*
 * libFuzzer harness for the .npy reader of the C example (examples_c/npy_read.h): arbitrary
 * bytes as a .npy file, under AddressSanitizer and UndefinedBehaviorSanitizer. On success every
 * value the returned shape promises is read, so a shape that claims more than was allocated
 * shows as a heap overflow. Built and run by scripts/fuzz.sh:
 *     clang -fsanitize=fuzzer,address,undefined -I examples_c fuzz/c/npy_reader.c
 */
#define _POSIX_C_SOURCE 200809L /* fmemopen */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "npy_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) {
        return 0; /* fmemopen refuses an empty buffer */
    }
    FILE *f = fmemopen((void *)data, size, "rb");
    if (f == NULL) {
        abort();
    }
    size_t shape[3];
    int ndim = -1;
    const char *why = NULL;
    float *values = npy_read(f, shape, &ndim, 3, &why);
    fclose(f);
    if (values == NULL) {
        if (why == NULL) {
            abort(); /* a failure always says why */
        }
        return 0;
    }
    if (ndim < 0 || ndim > 3 || why != NULL) {
        abort();
    }
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        count *= shape[i];
    }
    volatile float sink = 0.0f;
    for (size_t i = 0; i < count; i++) {
        sink += values[i];
    }
    (void)sink;
    free(values);
    return 0;
}
