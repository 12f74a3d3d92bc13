/*
 * cuda_ballast.h -- for the C examples' GPU runs: takes GPU memory away from a libda3 model
 * (a ballast allocation) so that a large card stands in for a smaller one. Needs <dlfcn.h>'s
 * dlsym (link with -ldl on older glibc) and a model on CUDA devices.
 */
#ifndef DA3_EXAMPLES_CUDA_BALLAST_H
#define DA3_EXAMPLES_CUDA_BALLAST_H

#include <dlfcn.h>
#include <stdio.h>

#include "da3.h"

typedef int (*cuda_set_device_fn)(int);
typedef int (*cuda_mem_get_info_fn)(size_t *, size_t *);
typedef int (*cuda_malloc_fn)(void **, size_t);

/* Fills every CUDA replica's device until `gib` GiB are free. The CUDA runtime is the one
 * libtorch loaded (global symbols), so this works only after da3_create. */
static int leave_free(const da3_model *model, double gib) {
    cuda_set_device_fn set_device;
    cuda_mem_get_info_fn mem_get_info;
    cuda_malloc_fn cuda_malloc;
    /* POSIX's way to turn dlsym's object pointer into a function pointer. */
    *(void **)(&set_device) = dlsym(RTLD_DEFAULT, "cudaSetDevice");
    *(void **)(&mem_get_info) = dlsym(RTLD_DEFAULT, "cudaMemGetInfo");
    *(void **)(&cuda_malloc) = dlsym(RTLD_DEFAULT, "cudaMalloc");
    if (set_device == NULL || mem_get_info == NULL || cuda_malloc == NULL) {
        fprintf(stderr, "--leave-free-gib: the CUDA runtime's symbols are not loaded\n");
        return -1;
    }
    size_t n = da3_model_replica_count(model);
    for (size_t i = 0; i < n; i++) {
        int index;
        if (sscanf(da3_model_replica_device(model, i), "cuda:%d", &index) != 1) {
            continue;
        }
        size_t free_b = 0, total_b = 0;
        set_device(index);
        mem_get_info(&free_b, &total_b);
        size_t keep = (size_t)(gib * 1073741824.0);
        if (free_b > keep) {
            void *ballast = NULL;
            if (cuda_malloc(&ballast, free_b - keep) != 0) {
                fprintf(stderr, "cudaMalloc of the ballast on cuda:%d failed\n", index);
                return -1;
            }
        }
        mem_get_info(&free_b, &total_b);
        printf("cuda:%d: %.1f GiB free of %.1f GiB after the ballast\n", index,
               (double)free_b / 1073741824.0, (double)total_b / 1073741824.0);
    }
    return 0;
}

#endif
