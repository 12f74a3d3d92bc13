/*
 * The .npy reader of examples_c/da3_infer.c, in a header of its own so that the fuzz harness
 * (fuzz/c/npy_reader.c) runs the same code.
 */
#ifndef DA3_EXAMPLES_NPY_READ_H
#define DA3_EXAMPLES_NPY_READ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most values a file may hold (1 GiB of float32), and most bytes its header may have. */
#define NPY_MAX_VALUES ((size_t)1 << 28)
#define NPY_MAX_HEADER 65536

/*
 * Reads a NumPy .npy file (versions 1.0 to 3.0) from `f` holding little-endian float32 ('<f4')
 * or float64 ('<f8') values in C order, as float32. On success returns a malloc'ed array of
 * the product of shape[0..*ndim] values (caller frees), its shape in shape[0..*ndim] (at most
 * max_dims). On failure returns NULL and points *why at the reason.
 */
static float *npy_read(FILE *f, size_t *shape, int *ndim, int max_dims, const char **why) {
    float *values = NULL;
    char *header = NULL;
    unsigned char pre[12];
    size_t header_len = 0;
    *why = NULL;
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        *why = "not a .npy file";
        goto fail;
    }
    if (pre[6] == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) {
            *why = "truncated header";
            goto fail;
        }
        header_len = (size_t)pre[8] | ((size_t)pre[9] << 8);
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 8, 1, 4, f) != 4) {
            *why = "truncated header";
            goto fail;
        }
        header_len = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)pre[10] << 16) |
                     ((size_t)pre[11] << 24);
    } else {
        *why = "unknown .npy version";
        goto fail;
    }
    if (header_len == 0 || header_len > NPY_MAX_HEADER ||
        (header = malloc(header_len + 1)) == NULL ||
        fread(header, 1, header_len, f) != header_len) {
        *why = "bad header";
        goto fail;
    }
    header[header_len] = '\0';
    size_t item;
    if (strstr(header, "'descr': '<f4'") != NULL) {
        item = 4;
    } else if (strstr(header, "'descr': '<f8'") != NULL) {
        item = 8;
    } else {
        *why = "dtype is not little-endian float32 or float64";
        goto fail;
    }
    if (strstr(header, "'fortran_order': False") == NULL) {
        *why = "not in C order";
        goto fail;
    }
    const char *dims = strstr(header, "'shape': (");
    if (dims == NULL) {
        *why = "no shape";
        goto fail;
    }
    dims += strlen("'shape': (");
    size_t count = 1;
    *ndim = 0;
    while (*dims != ')') {
        char *end = NULL;
        unsigned long long d = strtoull(dims, &end, 10);
        if (end == dims || *ndim == max_dims || d > NPY_MAX_VALUES) {
            *why = "bad shape";
            goto fail;
        }
        shape[(*ndim)++] = (size_t)d;
        /* Checked at every step: both factors are at most 2^28, so the product cannot wrap. */
        count *= (size_t)d;
        if (count > NPY_MAX_VALUES) {
            *why = "too large";
            goto fail;
        }
        dims = end;
        while (*dims == ',' || *dims == ' ') {
            dims++;
        }
    }
    if (count == 0 || (values = malloc(count * sizeof *values)) == NULL) {
        *why = "empty or too large";
        goto fail;
    }
    for (size_t i = 0; i < count; i++) {
        unsigned char b[8];
        if (fread(b, 1, item, f) != item) {
            *why = "truncated data";
            goto fail;
        }
        uint64_t bits = 0;
        for (size_t k = 0; k < item; k++) {
            bits |= (uint64_t)b[k] << (8 * k);
        }
        if (item == 4) {
            uint32_t u = (uint32_t)bits;
            float v;
            memcpy(&v, &u, sizeof v);
            values[i] = v;
        } else {
            double v;
            memcpy(&v, &bits, sizeof v);
            values[i] = (float)v;
        }
    }
    free(header);
    return values;
fail:
    free(values);
    free(header);
    return NULL;
}

#endif
