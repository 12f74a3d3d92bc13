/*
 * da3_oom: forces an out-of-memory on the model's device and checks that the C API reports
 * it as DA3_ERR_OUT_OF_MEMORY with a short message, and that the same handle then serves a
 * small request. For the GPU device runs (the CPU case is tests/oom.rs).
 *
 *     da3_oom CHECKPOINT LEAVE_FREE_GIB [VIEWS SIDE]...   (default sizes: 1 518  4 1008  4 2016)
 *
 * Loads the model, leaves LEAVE_FREE_GIB GiB free on its GPU (a ballast allocation: a large
 * card stands in for a small one), then runs each VIEWS x 3 x SIDE x SIDE preprocessed request
 * (SIDE a multiple of 14) until one fails; exit status 0 when that failure is
 * DA3_ERR_OUT_OF_MEMORY and the small request after it succeeds.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda_ballast.h"
#include "da3.h"

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) * 1e-9;
}

/* One preprocessed request of `views` x 3 x side x side values in [-1, 1]. */
static da3_status run(da3_model *model, size_t views, uint32_t side) {
    size_t count = views * 3 * (size_t)side * side;
    float *images = malloc(count * sizeof *images);
    if (images == NULL) {
        fprintf(stderr, "da3_oom: cannot allocate %zu host floats\n", count);
        exit(2);
    }
    for (size_t i = 0; i < count; i++) {
        images[i] = (float)((int)(i % 97) - 48) / 50.0f;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    da3_result *result = NULL;
    da3_status status = da3_infer_preprocessed(model, images, views, side, side, NULL, &result);
    printf("%zu x %u x %u: %s after %.1f s", views, side, side, da3_status_name(status), seconds_since(&start));
    if (status != DA3_OK) {
        printf(": %s", da3_last_error_message());
    }
    printf("\n");
    fflush(stdout);
    da3_result_free(result);
    free(images);
    return status;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc % 2 != 1) {
        fprintf(stderr, "usage: da3_oom CHECKPOINT LEAVE_FREE_GIB [VIEWS SIDE]...\n");
        return 2;
    }
    da3_model *model = NULL;
    if (da3_create(argv[1], true, DA3_PRECISION_AUTO, &model) != DA3_OK) {
        fprintf(stderr, "da3_oom: %s\n", da3_last_error_message());
        return 1;
    }
    printf("model %s on %s\n", da3_model_preset(model), da3_model_device(model));
    if (leave_free(model, strtod(argv[2], NULL)) != 0) {
        da3_free(model);
        return 1;
    }
    static const char *const defaults[] = {"1", "518", "4", "1008", "4", "2016"};
    const char *const *sizes = argc > 3 ? (const char *const *)argv + 3 : defaults;
    int pairs = argc > 3 ? (argc - 3) / 2 : 3;
    da3_status failure = DA3_OK;
    for (int i = 0; i < pairs && failure == DA3_OK; i++) {
        failure = run(model, (size_t)strtoul(sizes[2 * i], NULL, 10), (uint32_t)strtoul(sizes[2 * i + 1], NULL, 10));
    }
    const char *message = failure == DA3_OK ? "" : da3_last_error_message();
    /* One line (CUDA's out-of-memory line runs to about 600 characters), no C++ backtrace. */
    int short_message = strlen(message) < 1000 && strstr(message, "frame #") == NULL &&
                        strstr(message, "Exception raised from") == NULL && strchr(message, '\n') == NULL;
    da3_status after = run(model, 1, 518);
    da3_free(model);
    int ok = failure == DA3_ERR_OUT_OF_MEMORY && short_message && after == DA3_OK;
    printf("%s: out of memory %s, message %s, next request %s\n", ok ? "PASS" : "FAIL",
           failure == DA3_ERR_OUT_OF_MEMORY ? "reported" : "NOT reported", short_message ? "one line without backtrace" : "LONG or with a backtrace",
           da3_status_name(after));
    return ok ? 0 : 1;
}
