/*
 * da3_multi_gpu -- measures one libda3 handle on several devices (replicas and sharding).
 *
 *   da3_multi_gpu throughput --model M --devices LIST [--scenes N] [--views V] [--repeat R]
 *                            [--dump FILE]
 *       N independent scenes of V synthetic 504x378 views through da3_infer_scenes, scenes
 *       spread over the replicas (DA3_PLACEMENT_REPLICATE); prints the best of R timed runs
 *       after one warm-up batch. --dump writes every scene's depth (float32, scene order).
 *
 *   da3_multi_gpu capacity --model M --devices LIST --views V1,V2,... [--placement P]
 *                          [--leave-free-gib G] [--step-cap-s S] [--total-cap-s T]
 *                          [--check-views C --dump FILE]
 *       One scene of V1, V2, ... views (ascending) through da3_infer until one fails or a step
 *       takes longer than S seconds, or the next would not fit in T seconds (a step of twice
 *       the views is assumed to take 4x: global attention is quadratic). Prints each step's
 *       latency or error, then checks that the handle still works after a failure (a small
 *       scene). --leave-free-gib G first fills every CUDA device of the handle until G GiB
 *       are free (cudaMalloc through the CUDA runtime libtorch loaded), to stand in for
 *       smaller cards. --check-views C --dump FILE first runs one C-view scene with the
 *       placement forced to DA3_PLACEMENT_SHARD and writes its depth, for comparison with a
 *       one-device run. P: auto (default), replicate, shard.
 *
 * Lines starting with "RESULT" are for scripts. Exit status: 0 on success (a capacity step
 * failing is a result, not an error), 1 when libda3 fails otherwise, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "da3.h"
#include "cuda_ballast.h"

#define WIDTH 504u
#define HEIGHT 378u
#define MAX_STEPS 32

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void usage(void) {
    fprintf(stderr,
            "usage: da3_multi_gpu throughput --model M --devices LIST [--scenes N] [--views V]\n"
            "                     [--repeat R] [--dump FILE]\n"
            "       da3_multi_gpu capacity --model M --devices LIST --views V1,V2,...\n"
            "                     [--placement auto|replicate|shard] [--leave-free-gib G]\n"
            "                     [--step-cap-s S] [--total-cap-s T] [--check-views C --dump FILE]\n");
}

/* A deterministic RGB8 pattern per (scene, view): smooth ramps plus a moving block, so views
 * differ and depth maps have structure even on random weights. */
static unsigned char *make_view(unsigned scene, unsigned view) {
    unsigned char *p = malloc((size_t)WIDTH * HEIGHT * 3);
    if (p == NULL) {
        return NULL;
    }
    unsigned seed = scene * 131u + view * 17u;
    for (unsigned y = 0; y < HEIGHT; y++) {
        for (unsigned x = 0; x < WIDTH; x++) {
            unsigned char *px = p + ((size_t)y * WIDTH + x) * 3;
            int block = (x / 42u + y / 42u + seed) % 5u == 0;
            px[0] = (unsigned char)((x + seed * 7u) % 256u);
            px[1] = (unsigned char)((y * 2u + seed * 3u) % 256u);
            px[2] = (unsigned char)(block ? 230u : (x * y / 97u + seed) % 200u);
        }
    }
    return p;
}

/* Views [first, first + count) of one scene, as da3_images over freshly made buffers. */
static int make_scene(unsigned scene, size_t count, da3_image *views) {
    for (size_t v = 0; v < count; v++) {
        unsigned char *data = make_view(scene, (unsigned)v);
        if (data == NULL) {
            return -1;
        }
        views[v] = (da3_image){data, WIDTH, HEIGHT, (size_t)WIDTH * 3, DA3_PIXEL_RGB8};
    }
    return 0;
}

static void free_scene(da3_image *views, size_t count) {
    for (size_t v = 0; v < count; v++) {
        free((void *)views[v].data);
    }
}

static int write_depth(FILE *f, const da3_result *r) {
    size_t n = da3_result_view_count(r) * da3_result_width(r) * da3_result_height(r);
    return fwrite(da3_result_depth_all(r), sizeof(float), n, f) == n ? 0 : -1;
}

static void print_devices(const da3_model *model) {
    size_t n = da3_model_replica_count(model);
    printf("replicas: %zu (", n);
    for (size_t i = 0; i < n; i++) {
        printf("%s%s", i ? ", " : "", da3_model_replica_device(model, i));
    }
    printf(")\n");
}

/* ---------------------------------------------------------------------------------------- */

static int throughput(da3_model *model, const char *devices, size_t scenes, size_t views,
                      int repeat, const char *dump) {
    da3_scene *batch = calloc(scenes, sizeof *batch);
    da3_image *images = calloc(scenes * views, sizeof *images);
    da3_result **results = calloc(scenes, sizeof *results);
    da3_status *statuses = calloc(scenes, sizeof *statuses);
    int rc = 1;
    if (batch == NULL || images == NULL || results == NULL || statuses == NULL) {
        fprintf(stderr, "out of host memory\n");
        goto done;
    }
    for (size_t s = 0; s < scenes; s++) {
        if (make_scene((unsigned)s, views, images + s * views) != 0) {
            fprintf(stderr, "out of host memory\n");
            goto done;
        }
        batch[s] = (da3_scene){images + s * views, views};
    }
    da3_model_set_placement(model, DA3_PLACEMENT_REPLICATE);
    /* Warm-up (allocator, kernels) on every replica: the first scenes of the batch. */
    size_t warm = 2 * da3_model_replica_count(model);
    warm = warm < scenes ? warm : scenes;
    if (da3_infer_scenes(model, batch, warm, NULL, results, statuses) != DA3_OK) {
        fprintf(stderr, "warm-up: %s\n", da3_last_error_message());
        goto done;
    }
    for (size_t s = 0; s < warm; s++) {
        da3_result_free(results[s]);
    }
    double best = 1e30;
    for (int r = 0; r < repeat; r++) {
        double t0 = now_s();
        da3_status st = da3_infer_scenes(model, batch, scenes, NULL, results, statuses);
        double dt = now_s() - t0;
        if (st != DA3_OK) {
            fprintf(stderr, "da3_infer_scenes: %s\n", da3_last_error_message());
            for (size_t s = 0; s < scenes; s++) {
                da3_result_free(results[s]);
            }
            goto done;
        }
        printf("run %d: %.3f s (%.2f scenes/s)\n", r, dt, (double)scenes / dt);
        best = dt < best ? dt : best;
        if (r == repeat - 1 && dump != NULL) {
            FILE *f = fopen(dump, "wb");
            int ok = f != NULL;
            for (size_t s = 0; ok && s < scenes; s++) {
                ok = write_depth(f, results[s]) == 0;
            }
            if (f == NULL || fclose(f) != 0 || !ok) {
                fprintf(stderr, "cannot write %s\n", dump);
            }
        }
        for (size_t s = 0; s < scenes; s++) {
            da3_result_free(results[s]);
        }
    }
    printf("RESULT throughput devices=%s scenes=%zu views=%zu best_s=%.3f scenes_per_s=%.2f\n",
           devices, scenes, views, best, (double)scenes / best);
    rc = 0;
done:
    if (images != NULL) {
        free_scene(images, scenes * views);
    }
    free(batch);
    free(images);
    free(results);
    free(statuses);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */

static int run_scene(da3_model *model, size_t views, double *seconds, da3_result **out) {
    da3_image *images = calloc(views, sizeof *images);
    if (images == NULL || make_scene(1000u, views, images) != 0) {
        fprintf(stderr, "out of host memory\n");
        free(images);
        return -1;
    }
    double t0 = now_s();
    da3_status st = da3_infer(model, images, views, NULL, out);
    *seconds = now_s() - t0;
    free_scene(images, views);
    free(images);
    return st == DA3_OK ? 0 : 1;
}

static da3_placement placement_of(const char *name) {
    if (strcmp(name, "replicate") == 0) {
        return DA3_PLACEMENT_REPLICATE;
    }
    if (strcmp(name, "shard") == 0) {
        return DA3_PLACEMENT_SHARD;
    }
    return DA3_PLACEMENT_AUTO;
}

static int capacity(da3_model *model, const char *devices, const size_t *steps, size_t n_steps,
                    const char *placement, double leave_gib, double step_cap, double total_cap,
                    size_t check_views, const char *dump) {
    if (leave_gib > 0 && leave_free(model, leave_gib) != 0) {
        return 1;
    }
    double t_start = now_s();
    da3_result *result = NULL;
    double dt = 0;
    if (check_views > 0 && dump != NULL) {
        da3_model_set_placement(model, DA3_PLACEMENT_SHARD);
        if (run_scene(model, check_views, &dt, &result) != 0) {
            fprintf(stderr, "check scene: %s\n", da3_last_error_message());
            return 1;
        }
        FILE *f = fopen(dump, "wb");
        if (f == NULL || write_depth(f, result) != 0 || fclose(f) != 0) {
            fprintf(stderr, "cannot write %s\n", dump);
        }
        da3_result_free(result);
        printf("check scene: %zu views, %.3f s (placement shard)\n", check_views, dt);
    }
    da3_model_set_placement(model, placement_of(placement));
    size_t largest = 0;
    double largest_s = 0, last_s = 0;
    int failed = 0;
    for (size_t i = 0; i < n_steps; i++) {
        size_t v = steps[i];
        double elapsed = now_s() - t_start;
        double ratio = largest ? (double)v / (double)largest : 1.0;
        if (largest && elapsed + last_s * ratio * ratio > total_cap) {
            printf("step %zu views: skipped (would pass the %.0f s total cap)\n", v, total_cap);
            break;
        }
        int rc = run_scene(model, v, &dt, &result);
        if (rc < 0) {
            return 1;
        }
        if (rc != 0) {
            printf("step %zu views: FAILED after %.2f s: %s\n", v, dt, da3_last_error_message());
            printf("RESULT capacity_step devices=%s placement=%s views=%zu status=failed\n", devices,
                   placement, v);
            failed = 1;
            break;
        }
        da3_result_free(result);
        printf("step %zu views: %.3f s\n", v, dt);
        printf("RESULT capacity_step devices=%s placement=%s views=%zu status=ok seconds=%.3f\n",
               devices, placement, v, dt);
        largest = v;
        largest_s = last_s = dt;
        if (dt > step_cap) {
            printf("step %zu views took more than the %.0f s step cap: stopping\n", v, step_cap);
            break;
        }
    }
    if (failed) {
        /* The failed call must not have broken the handle. */
        int rc = run_scene(model, 2, &dt, &result);
        printf("after the failure a 2-view scene %s\n", rc == 0 ? "runs fine" : "FAILS");
        printf("RESULT usable_after_failure=%d\n", rc == 0);
        if (rc == 0) {
            da3_result_free(result);
        }
    }
    printf("RESULT capacity devices=%s placement=%s largest_views=%zu latency_s=%.3f limit=%s\n",
           devices, placement, largest, largest_s, failed ? "memory" : "time-cap-or-list-end");
    return 0;
}

/* ---------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *mode = argv[1];
    const char *model_path = NULL, *devices = NULL, *dump = NULL, *views_arg = "4";
    const char *placement = "auto";
    size_t scenes = 64, check_views = 0;
    int repeat = 2;
    double leave_gib = 0, step_cap = 60, total_cap = 180;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--model") == 0) {
            model_path = value;
        } else if (strcmp(a, "--devices") == 0) {
            devices = value;
        } else if (strcmp(a, "--scenes") == 0) {
            scenes = strtoul(value, NULL, 10);
        } else if (strcmp(a, "--views") == 0) {
            views_arg = value;
        } else if (strcmp(a, "--repeat") == 0) {
            repeat = atoi(value);
        } else if (strcmp(a, "--dump") == 0) {
            dump = value;
        } else if (strcmp(a, "--placement") == 0) {
            placement = value;
        } else if (strcmp(a, "--leave-free-gib") == 0) {
            leave_gib = atof(value);
        } else if (strcmp(a, "--step-cap-s") == 0) {
            step_cap = atof(value);
        } else if (strcmp(a, "--total-cap-s") == 0) {
            total_cap = atof(value);
        } else if (strcmp(a, "--check-views") == 0) {
            check_views = strtoul(value, NULL, 10);
        } else {
            usage();
            return 2;
        }
    }
    size_t steps[MAX_STEPS];
    size_t n_steps = 0;
    for (const char *p = views_arg; *p != '\0' && n_steps < MAX_STEPS;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p) {
            break;
        }
        steps[n_steps++] = v;
        if (*end != ',') {
            break;
        }
        p = end + 1;
    }
    if (model_path == NULL || devices == NULL || n_steps == 0 || steps[0] == 0 || scenes == 0 ||
        repeat < 1) {
        usage();
        return 2;
    }
    double t0 = now_s();
    da3_model *model = NULL;
    if (da3_create_on_devices(model_path, true, DA3_PRECISION_AUTO, devices, &model) != DA3_OK) {
        fprintf(stderr, "da3_create_on_devices: %s\n", da3_last_error_message());
        return 1;
    }
    printf("model %s loaded in %.1f s, precision %s\n", da3_model_preset(model), now_s() - t0,
           da3_precision_name(da3_model_precision(model)));
    print_devices(model);
    int rc;
    if (strcmp(mode, "throughput") == 0) {
        rc = throughput(model, devices, scenes, steps[0], repeat, dump);
    } else if (strcmp(mode, "capacity") == 0) {
        rc = capacity(model, devices, steps, n_steps, placement, leave_gib, step_cap, total_cap,
                      check_views, dump);
    } else {
        usage();
        rc = 2;
    }
    fflush(stdout);
    da3_free(model);
    return rc;
}
