/*
 * C tests of the benchmark-facing API: da3_infer_preprocessed (compared with da3_infer on an
 * image that needs no resize), da3_model_memory_stats, da3_model_replica_memory_stats and
 * da3_model_reset_peak_memory
 * (DA3_ERR_NOT_AVAILABLE on the CPU; real numbers on a GPU). Usage: test_accel CHECKPOINT.
 * Prints one line per check and "N passed, M failed, K skipped" (check.h); exit status 1 on any
 * failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "da3.h"

static double abs_d(double x) { return x < 0 ? -x : x; }

/* 56 x 42: with process_res 56 and upper-bound resize both sides are already multiples of 14,
 * so da3_infer does no resize and its network input is exactly the normalised pixels. */
#define W 56
#define H 42
#define VIEWS 2

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: test_accel CHECKPOINT\n");
        return 2;
    }
    da3_model *model = NULL;
    da3_status st = da3_create(argv[1], true, DA3_PRECISION_FP32, &model);
    CHECK_OK("da3_create (use_accelerate, fp32)", st);
    if (st != DA3_OK) return 1;
    int on_cpu = strcmp(da3_model_device(model), "cpu") == 0;

    static uint8_t rgb[VIEWS][H * W * 3];
    static float planes[VIEWS * 3 * H * W];
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    da3_image views[VIEWS];
    for (int v = 0; v < VIEWS; v++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    uint8_t px = (uint8_t)((x * (3 + c) + y * (5 - c) + v * 70 + (x * y) % 17) & 0xff);
                    rgb[v][(y * W + x) * 3 + c] = px;
                    planes[((size_t)(v * 3 + c) * H + (size_t)y) * W + (size_t)x] = ((float)px / 255.0f - mean[c]) / std[c];
                }
        views[v].data = rgb[v];
        views[v].width = W;
        views[v].height = H;
        views[v].stride = W * 3;
        views[v].format = DA3_PIXEL_RGB8;
    }
    da3_options o;
    da3_options_default(&o, sizeof o);
    o.process_res = W;

    da3_result *a = NULL, *b = NULL;
    CHECK_OK("da3_infer (56x42, process_res 56)", da3_infer(model, views, VIEWS, &o, &a));
    CHECK_OK("da3_infer_preprocessed (same pixels, normalised)",
             da3_infer_preprocessed(model, planes, VIEWS, H, W, &o, &b));
    if (a && b) {
        CHECK(da3_result_width(a) == W && da3_result_height(a) == H && da3_result_width(b) == W &&
                  da3_result_height(b) == H && da3_result_view_count(b) == VIEWS,
              "same size");
        const float *da = da3_result_depth_all(a), *db = da3_result_depth_all(b);
        double worst = 0;
        for (size_t i = 0; i < (size_t)VIEWS * W * H; i++) {
            double rel = abs_d((double)da[i] - (double)db[i]) / abs_d((double)da[i]);
            if (rel > worst) worst = rel;
        }
        /* Same network input, same device, same path: the same numbers (a GPU may pick other
         * kernels between calls, hence not bit equality). */
        CHECK(worst <= (on_cpu ? 0.0 : 1e-5),
              "depth: da3_infer_preprocessed == da3_infer (largest relative difference %.3g)",
              worst);
        if (da3_result_has_cameras(a)) {
            float ea[12], eb[12];
            da3_result_extrinsics(a, 1, ea);
            da3_result_extrinsics(b, 1, eb);
            double d = 0;
            for (int i = 0; i < 12; i++) if (abs_d((double)ea[i] - (double)eb[i]) > d) d = abs_d((double)ea[i] - (double)eb[i]);
            CHECK(d <= (on_cpu ? 0.0 : 1e-5), "extrinsics: da3_infer_preprocessed == da3_infer");
        }
    }
    da3_result_free(a);
    da3_result_free(b);

    da3_result *r = NULL;
    CHECK_STATUS("preprocessed: height not a multiple of 14",
                 da3_infer_preprocessed(model, planes, 1, 41, W, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "multiples of 14");
    CHECK_STATUS("preprocessed: zero views",
                 da3_infer_preprocessed(model, planes, 0, H, W, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "n_views");
    CHECK_STATUS("preprocessed: NULL images", da3_infer_preprocessed(model, NULL, 1, H, W, &o, &r),
                 DA3_ERR_NULL_POINTER, "images");
    CHECK_STATUS("preprocessed: NULL model", da3_infer_preprocessed(NULL, planes, 1, H, W, &o, &r),
                 DA3_ERR_NULL_POINTER, "model");
    CHECK(r == NULL, "preprocessed: no result after failures");

    da3_memory_stats mem;
    memset(&mem, 0, sizeof mem);
    CHECK_STATUS("memory stats: struct_size 0", da3_model_memory_stats(model, &mem),
                 DA3_ERR_INVALID_ARGUMENT, "struct_size");
    CHECK_STATUS("memory stats: NULL out", da3_model_memory_stats(model, NULL),
                 DA3_ERR_NULL_POINTER, "out");
    mem.struct_size = sizeof mem;
    if (on_cpu) {
        CHECK_STATUS("memory stats on the CPU: not available", da3_model_memory_stats(model, &mem),
                     DA3_ERR_NOT_AVAILABLE, "CPU");
        CHECK(mem.struct_size == sizeof mem && mem.peak_allocated_bytes == 0,
              "memory stats on the CPU: nothing written");
        CHECK_STATUS("reset peak on the CPU: not available", da3_model_reset_peak_memory(model),
                     DA3_ERR_NOT_AVAILABLE, "CPU");
        CHECK_STATUS("replica memory stats on the CPU: not available",
                     da3_model_replica_memory_stats(model, 0, &mem), DA3_ERR_NOT_AVAILABLE, "CPU");
    } else {
        da3_memory_stats first;
        memset(&first, 0, sizeof first);
        first.struct_size = sizeof first;
        CHECK_OK("replica 0 memory stats on the GPU", da3_model_replica_memory_stats(model, 0, &first));
        CHECK(first.struct_size == sizeof first && first.allocated_bytes > 0,
              "replica 0 memory stats: the weights are allocated");
        CHECK_OK("memory stats on the GPU", da3_model_memory_stats(model, &mem));
        CHECK(mem.struct_size == sizeof mem && mem.allocated_bytes > 0 &&
                  mem.peak_allocated_bytes >= mem.allocated_bytes &&
                  mem.reserved_bytes >= mem.allocated_bytes,
              "memory stats: weights are allocated, peak >= current, reserved >= allocated");
        CHECK_OK("reset peak on the GPU", da3_model_reset_peak_memory(model));
    }
    CHECK_STATUS("replica memory stats: index out of range",
                 da3_model_replica_memory_stats(model, da3_model_replica_count(model), &mem),
                 DA3_ERR_INVALID_ARGUMENT, "out of range");
    CHECK_STATUS("replica memory stats: NULL model", da3_model_replica_memory_stats(NULL, 0, &mem),
                 DA3_ERR_NULL_POINTER, "model");
    CHECK_STATUS("replica memory stats: NULL out", da3_model_replica_memory_stats(model, 0, NULL),
                 DA3_ERR_NULL_POINTER, "out");
    CHECK_STATUS("reset peak: NULL model", da3_model_reset_peak_memory(NULL),
                 DA3_ERR_NULL_POINTER, "model");
    da3_free(model);
    return check_summary();
}
