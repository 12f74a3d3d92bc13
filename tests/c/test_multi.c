/*
 * Several replicas in one handle, seen from C: da3_create_on_devices, the replica queries,
 * placements and da3_infer_scenes (order, partial failure, concurrent callers), on two CPU
 * replicas of the checkpoint in DA3_TEST_CHECKPOINT (required).
 *
 * Prints "N passed, M failed, K skipped" last (check.h) and exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "da3.h"

static int message_has(const char *word) {
    return strstr(da3_last_error_message(), word) != NULL;
}

#define W 64u
#define H 48u
#define VIEWS 4

static unsigned char g_pixels[VIEWS][W * H * 3];
static da3_image g_views[VIEWS];

static void make_images(void) {
    for (unsigned v = 0; v < VIEWS; v++) {
        for (unsigned i = 0; i < W * H; i++) {
            unsigned x = i % W, y = i / W;
            g_pixels[v][3 * i + 0] = (unsigned char)((x * 4 + v * 50) % 256);
            g_pixels[v][3 * i + 1] = (unsigned char)((y * 5 + v * 30) % 256);
            g_pixels[v][3 * i + 2] = (unsigned char)((x * y + v * 70) % 256);
        }
        g_views[v] = (da3_image){g_pixels[v], W, H, W * 3, DA3_PIXEL_RGB8};
    }
}

/* Largest |a - b| over two results' depth maps, or INFINITY when their shapes differ. */
static double depth_difference(const da3_result *a, const da3_result *b) {
    if (a == NULL || b == NULL || da3_result_view_count(a) != da3_result_view_count(b) ||
        da3_result_width(a) != da3_result_width(b) || da3_result_height(a) != da3_result_height(b)) {
        return INFINITY;
    }
    size_t n = da3_result_view_count(a) * da3_result_width(a) * da3_result_height(a);
    const float *x = da3_result_depth_all(a), *y = da3_result_depth_all(b);
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)x[i] - (double)y[i]);
        d = e > d ? e : d;
    }
    return d;
}

static da3_model *g_model;
static da3_options g_options;
static da3_result *g_expected[2];

/* Scenes used throughout: views {0} and views {1, 2, 3}. */
static const da3_scene GOOD_SCENES[2] = {{g_views, 1}, {g_views + 1, 3}};

static void *concurrent_caller(void *arg) {
    int *ok = arg;
    da3_result *results[2] = {NULL, NULL};
    da3_status statuses[2];
    *ok = 1;
    for (int round = 0; round < 2; round++) {
        if (da3_infer_scenes(g_model, GOOD_SCENES, 2, &g_options, results, statuses) != DA3_OK) {
            *ok = 0;
        }
        for (int s = 0; s < 2; s++) {
            if (depth_difference(results[s], g_expected[s]) > 1e-6) {
                *ok = 0;
            }
            da3_result_free(results[s]);
        }
    }
    return NULL;
}

int main(void) {
    make_images();
    da3_model *model = NULL;
    CHECK(da3_create_on_devices("x", true, DA3_PRECISION_FP32, NULL, &model) ==
                  DA3_ERR_NULL_POINTER &&
              message_has("devices") && model == NULL,
          "create_on_devices: NULL devices");
    CHECK(da3_create_on_devices("x", true, DA3_PRECISION_FP32, "cpu,gpu", &model) ==
                  DA3_ERR_INVALID_ARGUMENT &&
              message_has("gpu"),
          "create_on_devices: unknown device");
    da3_result *results[3] = {(da3_result *)1, (da3_result *)1, (da3_result *)1};
    da3_status statuses[3] = {DA3_OK, DA3_OK, DA3_OK};
    CHECK(da3_infer_scenes(NULL, GOOD_SCENES, 2, NULL, results, statuses) == DA3_ERR_NULL_POINTER &&
              results[0] == NULL && results[1] == NULL && statuses[0] == DA3_ERR_NULL_POINTER &&
              statuses[1] == DA3_ERR_NULL_POINTER,
          "infer_scenes: NULL model fails every scene");
    CHECK(da3_infer_scenes(NULL, GOOD_SCENES, 2, NULL, NULL, NULL) == DA3_ERR_NULL_POINTER &&
              message_has("results"),
          "infer_scenes: NULL results");
    CHECK(da3_model_replica_count(NULL) == 0 && da3_model_replica_device(NULL, 0) == NULL,
          "replica queries on NULL");

    const char *checkpoint = getenv("DA3_TEST_CHECKPOINT");
    if (checkpoint == NULL) {
        return check_give_up("DA3_TEST_CHECKPOINT is not set");
    }
    if (da3_create_on_devices(checkpoint, true, DA3_PRECISION_FP32, "cpu,cpu", &g_model) != DA3_OK) {
        return check_give_up("da3_create_on_devices(%s, \"cpu,cpu\")", checkpoint);
    }
    CHECK(da3_model_replica_count(g_model) == 2 &&
              strcmp(da3_model_replica_device(g_model, 1), "cpu") == 0 &&
              strcmp(da3_model_device(g_model), "cpu") == 0,
          "two replicas");
    CHECK(da3_model_replica_device(g_model, 2) == NULL && message_has("out of range"),
          "replica index out of range");
    CHECK(da3_model_set_placement(g_model, 7) == DA3_ERR_INVALID_ARGUMENT &&
              message_has("placement"),
          "unknown placement");
    CHECK(da3_model_set_placement(g_model, DA3_PLACEMENT_REPLICATE) == DA3_OK &&
              da3_model_placement(g_model) == DA3_PLACEMENT_REPLICATE,
          "placement round trip");

    da3_options_default(&g_options, sizeof g_options);
    g_options.process_res = 70;
    for (int s = 0; s < 2; s++) {
        da3_status st = da3_infer(g_model, GOOD_SCENES[s].views, GOOD_SCENES[s].view_count,
                                  &g_options, &g_expected[s]);
        CHECK(st == DA3_OK, "single-scene reference");
    }

    /* A batch with a bad scene in the middle: the others succeed, in order. */
    da3_image bad_view = g_views[0];
    bad_view.stride = 3; /* less than width * 3 */
    const da3_scene batch[3] = {GOOD_SCENES[0], {&bad_view, 1}, GOOD_SCENES[1]};
    da3_status st = da3_infer_scenes(g_model, batch, 3, &g_options, results, statuses);
    CHECK(st == DA3_ERR_INVALID_ARGUMENT && message_has("scenes[1]") && message_has("stride") &&
              message_has("1 of 3"),
          "partial failure: status and message of the failed scene");
    CHECK(statuses[0] == DA3_OK && statuses[1] == DA3_ERR_INVALID_ARGUMENT && statuses[2] == DA3_OK,
          "partial failure: per-scene statuses");
    CHECK(results[1] == NULL && depth_difference(results[0], g_expected[0]) <= 1e-6 &&
              depth_difference(results[2], g_expected[1]) <= 1e-6,
          "partial failure: results in order");
    for (int s = 0; s < 3; s++) {
        da3_result_free(results[s]);
    }
    CHECK(da3_infer_scenes(g_model, GOOD_SCENES, 2, &g_options, results, NULL) == DA3_OK &&
              results[0] != NULL && results[1] != NULL,
          "statuses may be NULL");
    da3_result_free(results[0]);
    da3_result_free(results[1]);

    /* Four threads sharing the two replicas. */
    pthread_t threads[4];
    int ok[4];
    for (int t = 0; t < 4; t++) {
        pthread_create(&threads[t], NULL, concurrent_caller, &ok[t]);
    }
    int all_ok = 1;
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        all_ok &= ok[t];
    }
    CHECK(all_ok, "concurrent batches give the single-scene results");

    /* One scene split over both replicas. */
    da3_result *sharded = NULL;
    CHECK(da3_model_set_placement(g_model, DA3_PLACEMENT_SHARD) == DA3_OK &&
              da3_infer(g_model, GOOD_SCENES[1].views, 3, &g_options, &sharded) == DA3_OK &&
              depth_difference(sharded, g_expected[1]) <= 1e-6,
          "sharded scene");
    da3_result_free(sharded);

    da3_result_free(g_expected[0]);
    da3_result_free(g_expected[1]);
    da3_free(g_model);
    return check_summary();
}
