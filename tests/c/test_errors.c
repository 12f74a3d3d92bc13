/*
 * Error paths of libda3's C API, seen from C: each test checks the status code AND that
 * da3_last_error_message() contains the expected words.
 *
 * Groups:
 *   basic      -- argument checking that needs no model (always run);
 *   checkpoint -- da3_create on missing / corrupt / mismatched checkpoints built in a temp dir;
 *   model      -- needs a real (e.g. random-weight) checkpoint directory in the environment
 *                 variable DA3_TEST_CHECKPOINT; skipped, and said so, when it is unset.
 *
 * Prints "N passed, M failed, K skipped" last (check.h) and exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "da3.h"

/* ---------------------------------------------------------------------------------------- */
/* basic                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", DA3_VERSION_MAJOR, DA3_VERSION_MINOR,
             DA3_VERSION_PATCH);
    CHECK(strcmp(da3_version(), expected) == 0,
          "version string matches DA3_VERSION_* macros (library %s, header %s)", da3_version(),
          expected);
}

static void test_status_names(void) {
    static const char *const names[] = {
        "DA3_OK",           "DA3_ERR_INVALID_ARGUMENT", "DA3_ERR_NULL_POINTER",
        "DA3_ERR_MODEL_NOT_FOUND", "DA3_ERR_CHECKPOINT", "DA3_ERR_IMAGE",
        "DA3_ERR_IO",       "DA3_ERR_UNSUPPORTED",     "DA3_ERR_TORCH",
        "DA3_ERR_NOT_AVAILABLE", "DA3_ERR_PANIC"};
    const da3_status codes[] = {
        DA3_OK,           DA3_ERR_INVALID_ARGUMENT, DA3_ERR_NULL_POINTER,
        DA3_ERR_MODEL_NOT_FOUND, DA3_ERR_CHECKPOINT, DA3_ERR_IMAGE,
        DA3_ERR_IO,       DA3_ERR_UNSUPPORTED,     DA3_ERR_TORCH,
        DA3_ERR_NOT_AVAILABLE, DA3_ERR_PANIC};
    int ok = 1;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(da3_status_name((int)codes[i]), names[i]) != 0) {
            CHECK(0, "da3_status_name: wrong name for %s", names[i]);
            ok = 0;
        }
    }
    ok = ok && strcmp(da3_status_name(99), "DA3_UNKNOWN_STATUS") == 0 &&
         strcmp(da3_status_name(-1), "DA3_UNKNOWN_STATUS") == 0;
    CHECK(ok, "da3_status_name covers every code and unknown values");
    CHECK(strcmp(da3_precision_name(DA3_PRECISION_BF16), "bf16") == 0 &&
              strcmp(da3_precision_name(77), "unknown") == 0,
          "da3_precision_name");
}

static void test_create_arguments(void) {
    da3_model *model = (da3_model *)&model; /* garbage: must be reset to NULL */
    CHECK_STATUS("da3_create: NULL model string",
                 da3_create(NULL, false, DA3_PRECISION_AUTO, &model),
                 DA3_ERR_NULL_POINTER, "model", "NULL");
    CHECK(model == NULL, "da3_create: *out is NULL after failure");
    CHECK_STATUS("da3_create: NULL out pointer",
                 da3_create("/nonexistent", false, DA3_PRECISION_AUTO, NULL),
                 DA3_ERR_NULL_POINTER, "out", "NULL");
    CHECK_STATUS("da3_create: unknown precision", da3_create("/nonexistent", false, 42, &model),
                 DA3_ERR_INVALID_ARGUMENT, "precision", "42");
}

static void test_options(void) {
    da3_options o;
    CHECK_STATUS("da3_options_default: NULL", da3_options_default(NULL, sizeof o),
                 DA3_ERR_NULL_POINTER, "options");
    CHECK_STATUS("da3_options_default: size 0", da3_options_default(&o, 0),
                 DA3_ERR_INVALID_ARGUMENT, "struct_size");
    CHECK_STATUS("da3_options_default: size from a newer header", da3_options_default(&o, 4096),
                 DA3_ERR_UNSUPPORTED, "struct_size", "4096", "newer");
    CHECK_OK("da3_options_default", da3_options_default(&o, sizeof o));
    CHECK(o.struct_size == sizeof o && o.process_res == 504 &&
              o.resize_method == DA3_RESIZE_UPPER_BOUND_RESIZE &&
              o.ref_view_strategy == DA3_REF_VIEW_SADDLE_BALANCED,
          "da3_options_default: official defaults");
    CHECK_OK("da3_options_validate: NULL means defaults", da3_options_validate(NULL));

    da3_options bad = o;
    bad.resize_method = 99;
    CHECK_STATUS("options: resize_method = 99", da3_options_validate(&bad),
                 DA3_ERR_INVALID_ARGUMENT, "resize_method", "99");
    bad = o;
    bad.ref_view_strategy = 99;
    CHECK_STATUS("options: ref_view_strategy = 99", da3_options_validate(&bad),
                 DA3_ERR_INVALID_ARGUMENT, "ref_view_strategy", "99");
    bad = o;
    bad.process_res = 0;
    CHECK_STATUS("options: process_res = 0", da3_options_validate(&bad),
                 DA3_ERR_INVALID_ARGUMENT, "process_res", "0");
    bad = o;
    bad.process_res = 100000;
    CHECK_STATUS("options: process_res = 100000", da3_options_validate(&bad),
                 DA3_ERR_INVALID_ARGUMENT, "process_res", "100000");
    bad = o;
    bad.struct_size = 0;
    CHECK_STATUS("options: struct_size = 0 (not initialised)", da3_options_validate(&bad),
                 DA3_ERR_INVALID_ARGUMENT, "struct_size", "da3_options_default");
}

static void test_infer_without_model(void) {
    static const uint8_t pixels[2 * 2 * 3] = {0};
    da3_image view = {pixels, 2, 2, 6, DA3_PIXEL_RGB8};
    da3_result *result = (da3_result *)&result;
    CHECK_STATUS("da3_infer: NULL model", da3_infer(NULL, &view, 1, NULL, &result),
                 DA3_ERR_NULL_POINTER, "model", "NULL");
    CHECK(result == NULL, "da3_infer: *out is NULL after failure");
    /* A NULL model is reported before the (here bogus) views are looked at. */
    CHECK_STATUS("da3_infer: NULL model before bad views", da3_infer(NULL, NULL, 0, NULL, &result),
                 DA3_ERR_NULL_POINTER, "model");
    CHECK_STATUS("da3_infer: NULL out", da3_infer(NULL, &view, 1, NULL, NULL),
                 DA3_ERR_NULL_POINTER, "out");
    const char *paths[] = {"a.png"};
    CHECK_STATUS("da3_infer_files: NULL model", da3_infer_files(NULL, paths, 1, NULL, &result),
                 DA3_ERR_NULL_POINTER, "model");
}

static void test_null_handles(void) {
    float m[12];
    CHECK_FAILS("da3_result_view_count(NULL) is 0", da3_result_view_count(NULL) == 0,
                "result", "NULL");
    CHECK_FAILS("da3_result_width(NULL) is 0", da3_result_width(NULL) == 0, "result");
    CHECK_FAILS("da3_result_height(NULL) is 0", da3_result_height(NULL) == 0, "result");
    CHECK_FAILS("da3_result_depth(NULL) is NULL", da3_result_depth(NULL, 0) == NULL, "result");
    CHECK_FAILS("da3_result_confidence_all(NULL) is NULL", da3_result_confidence_all(NULL) == NULL,
                "result");
    CHECK_STATUS("da3_result_extrinsics(NULL)", da3_result_extrinsics(NULL, 0, m),
                 DA3_ERR_NULL_POINTER, "result");
    CHECK_STATUS("da3_result_intrinsics(NULL)", da3_result_intrinsics(NULL, 0, m),
                 DA3_ERR_NULL_POINTER, "result");
    CHECK_STATUS("da3_result_write_depth_png(NULL)", da3_result_write_depth_png(NULL, 0, "x.png"),
                 DA3_ERR_NULL_POINTER, "result");
    CHECK_FAILS("da3_model_preset(NULL) is NULL", da3_model_preset(NULL) == NULL, "model");
    CHECK_FAILS("da3_model_device(NULL) is NULL", da3_model_device(NULL) == NULL, "model");
    CHECK(da3_model_precision(NULL) == DA3_PRECISION_AUTO, "da3_model_precision(NULL) is AUTO");
    da3_free(NULL);
    da3_result_free(NULL);
    CHECK(1, "da3_free(NULL) and da3_result_free(NULL) are no-ops");
}

static void *thread_errors(void *arg) {
    int *ok = arg;
    *ok = strcmp(da3_last_error_message(), "") == 0;                 /* fresh thread: empty */
    *ok = *ok && da3_options_default(NULL, 16) == DA3_ERR_NULL_POINTER; /* its own error */
    *ok = *ok && strstr(da3_last_error_message(), "options") != NULL;
    return NULL;
}

static void test_thread_local_messages(void) {
    da3_model *model = NULL;
    da3_create(NULL, false, DA3_PRECISION_AUTO, &model);
    pthread_t t;
    int ok = 0;
    if (pthread_create(&t, NULL, thread_errors, &ok) != 0) {
        CHECK(0, "per-thread error messages: pthread_create failed");
        return;
    }
    pthread_join(t, NULL);
    CHECK(ok, "per-thread error messages: other thread starts empty and keeps its own");
    CHECK(strstr(da3_last_error_message(), "model") != NULL,
          "per-thread error messages: this thread's message is unchanged");
}

/* ---------------------------------------------------------------------------------------- */
/* checkpoint                                                                                */
/* ---------------------------------------------------------------------------------------- */

static int write_file(const char *dir, const char *name, const void *data, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    size_t n = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && n == len) ? 0 : -1;
}

static void remove_in(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    remove(path);
}

/* A syntactically valid safetensors file: 8-byte LE header length, JSON header, data. */
static int write_safetensors(const char *dir, const char *tensor_name, const char *shape_json,
                             size_t n_floats) {
    char header[512];
    int n = snprintf(header, sizeof header,
                     "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[0,%zu]}}",
                     tensor_name, shape_json, n_floats * 4);
    while (n % 8 != 0) { /* the format allows trailing spaces; align the data */
        header[n++] = ' ';
    }
    size_t total = 8 + (size_t)n + n_floats * 4;
    unsigned char *buf = calloc(total, 1);
    if (buf == NULL) {
        return -1;
    }
    for (int i = 0; i < 8; i++) {
        buf[i] = (unsigned char)(((uint64_t)n >> (8 * i)) & 0xff);
    }
    memcpy(buf + 8, header, (size_t)n);
    int rc = write_file(dir, "model.safetensors", buf, total);
    free(buf);
    return rc;
}

static void test_checkpoints(void) {
    da3_model *model = NULL;
    const char *missing = "/nonexistent/da3-test-no-such-checkpoint";
    CHECK_STATUS("da3_create: nonexistent directory",
                 da3_create(missing, false, DA3_PRECISION_AUTO, &model),
                 DA3_ERR_MODEL_NOT_FOUND, missing);
    const char *repo = "da3-test-no-such-org/no-such-model";
    CHECK_STATUS("da3_create: unknown repo id",
                 da3_create(repo, false, DA3_PRECISION_AUTO, &model),
                 DA3_ERR_MODEL_NOT_FOUND, repo);
    CHECK(model == NULL, "da3_create: no handle on failure");

    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/da3-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        CHECK(0, "checkpoint fixtures: mkdtemp failed: %s", dir);
        return;
    }

    /* Corrupt: valid config, garbage weights. */
    static const char small[] = "{\"model_name\": \"da3-small\"}";
    static const char garbage[] = "this is not a safetensors file at all";
    if (write_file(dir, "config.json", small, strlen(small)) != 0 ||
        write_file(dir, "model.safetensors", garbage, strlen(garbage)) != 0) {
        CHECK(0, "checkpoint fixtures: cannot write: %s", dir);
    } else {
        CHECK_STATUS("da3_create: corrupt model.safetensors",
                     da3_create(dir, false, DA3_PRECISION_FP32, &model),
                     DA3_ERR_CHECKPOINT, "safetensors");
        da3_free(model);
        model = NULL;
    }

    /* Mismatched: says da3-base, holds a single tensor of another shape. */
    static const char base[] = "{\"model_name\": \"da3-base\"}";
    if (write_file(dir, "config.json", base, strlen(base)) != 0 ||
        write_safetensors(dir, "backbone.pretrained.cls_token", "[1,1,384]", 384) != 0) {
        CHECK(0, "checkpoint fixtures: cannot write: %s", dir);
    } else {
        CHECK_STATUS("da3_create: mismatched checkpoint (da3-base config, foreign tensors)",
                     da3_create(dir, false, DA3_PRECISION_FP32, &model),
                     DA3_ERR_CHECKPOINT, "checkpoint");
        da3_free(model);
        model = NULL;
    }
    remove_in(dir, "config.json");
    remove_in(dir, "model.safetensors");
    rmdir(dir);
}

/* ---------------------------------------------------------------------------------------- */
/* model (DA3_TEST_CHECKPOINT)                                                               */
/* ---------------------------------------------------------------------------------------- */

#define W 64
#define H 48

static uint8_t g_rgb[H * W * 3];
static uint8_t g_bgra[H * (W * 4 + 16)]; /* padded rows */

static void make_images(void) {
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            uint8_t r = (uint8_t)(x * 4), g = (uint8_t)(y * 5), b = (uint8_t)((x + y) * 2);
            uint8_t *p = &g_rgb[(y * W + x) * 3];
            p[0] = r, p[1] = g, p[2] = b;
            uint8_t *q = &g_bgra[y * (W * 4 + 16) + x * 4];
            q[0] = b, q[1] = g, q[2] = r, q[3] = 255;
        }
    }
}

struct infer_job {
    const da3_model *model;
    da3_status status;
};

static void *infer_thread(void *arg) {
    struct infer_job *job = arg;
    da3_image view = {g_rgb, W, H, W * 3, DA3_PIXEL_RGB8};
    da3_options o;
    da3_options_default(&o, sizeof o);
    o.process_res = 56;
    da3_result *r = NULL;
    job->status = da3_infer(job->model, &view, 1, &o, &r);
    da3_result_free(r);
    return NULL;
}

static void test_with_model(const char *checkpoint) {
    da3_model *model = NULL;
    da3_status st = da3_create(checkpoint, false, DA3_PRECISION_AUTO, &model);
    CHECK_OK("da3_create: DA3_TEST_CHECKPOINT", st);
    if (st != DA3_OK) {
        return;
    }
    CHECK(da3_model_preset(model) && *da3_model_preset(model) && da3_model_device(model) &&
              *da3_model_device(model) && da3_model_precision(model) != DA3_PRECISION_AUTO,
          "model queries: preset, device, precision");

    make_images();
    da3_options o;
    da3_options_default(&o, sizeof o);
    o.process_res = 56;
    da3_image good[2] = {{g_rgb, W, H, W * 3, DA3_PIXEL_RGB8},
                         {g_bgra, W, H, W * 4 + 16, DA3_PIXEL_BGRA8}};
    da3_image v[2];
    da3_result *r = NULL;

    CHECK_STATUS("da3_infer: zero views", da3_infer(model, good, 0, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "n_views", "0");
    CHECK_STATUS("da3_infer: NULL views", da3_infer(model, NULL, 2, &o, &r),
                 DA3_ERR_NULL_POINTER, "views", "NULL");
    memcpy(v, good, sizeof v);
    v[0].data = NULL;
    CHECK_STATUS("da3_infer: NULL data", da3_infer(model, v, 2, &o, &r),
                 DA3_ERR_NULL_POINTER, "views[0].data", "NULL");
    memcpy(v, good, sizeof v);
    v[1].width = 0;
    CHECK_STATUS("da3_infer: zero width", da3_infer(model, v, 2, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "views[1]", "0x48");
    memcpy(v, good, sizeof v);
    v[0].height = 0;
    CHECK_STATUS("da3_infer: zero height", da3_infer(model, v, 2, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "views[0]", "64x0");
    memcpy(v, good, sizeof v);
    v[0].stride = W * 3 - 1;
    CHECK_STATUS("da3_infer: stride < width * bpp", da3_infer(model, v, 2, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "views[0].stride", "191", "192");
    memcpy(v, good, sizeof v);
    v[1].stride = W * 3; /* fine for RGB, too small for BGRA */
    CHECK_STATUS("da3_infer: stride too small for a 4-byte format", da3_infer(model, v, 2, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "views[1].stride", "256");
    memcpy(v, good, sizeof v);
    v[1].format = 9;
    CHECK_STATUS("da3_infer: unknown pixel format", da3_infer(model, v, 2, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "views[1].format", "9");

    da3_options bad = o;
    bad.resize_method = 99;
    CHECK_STATUS("da3_infer: resize_method = 99", da3_infer(model, good, 2, &bad, &r),
                 DA3_ERR_INVALID_ARGUMENT, "resize_method", "99");
    bad = o;
    bad.ref_view_strategy = 99;
    CHECK_STATUS("da3_infer: ref_view_strategy = 99", da3_infer(model, good, 2, &bad, &r),
                 DA3_ERR_INVALID_ARGUMENT, "ref_view_strategy", "99");
    bad = o;
    bad.process_res = 0;
    CHECK_STATUS("da3_infer: process_res = 0", da3_infer(model, good, 2, &bad, &r),
                 DA3_ERR_INVALID_ARGUMENT, "process_res", "0");
    CHECK(r == NULL, "da3_infer: no result after failures");

    const char *paths[] = {"/nonexistent/da3-missing.png", NULL};
    CHECK_STATUS("da3_infer_files: zero paths", da3_infer_files(model, paths, 0, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "n_paths", "0");
    CHECK_STATUS("da3_infer_files: NULL paths", da3_infer_files(model, NULL, 1, &o, &r),
                 DA3_ERR_NULL_POINTER, "paths");
    CHECK_STATUS("da3_infer_files: NULL paths[1]", da3_infer_files(model, paths, 2, &o, &r),
                 DA3_ERR_NULL_POINTER, "paths[1]");
    CHECK_STATUS("da3_infer_files: missing file", da3_infer_files(model, paths, 1, &o, &r),
                 DA3_ERR_IMAGE, "/nonexistent/da3-missing.png");

    st = da3_infer(model, good, 2, &o, &r);
    CHECK_OK("da3_infer: two views (RGB + padded BGRA)", st);
    if (st == DA3_OK) {
        size_t n = da3_result_view_count(r);
        uint32_t w = da3_result_width(r), h = da3_result_height(r);
        CHECK(n == 2 && w > 0 && h > 0 && w % 14 == 0 && h % 14 == 0,
              "result: 2 views, size a positive multiple of 14");
        const float *all = da3_result_depth_all(r);
        CHECK(all && da3_result_depth(r, 0) == all && da3_result_depth(r, 1) == all + (size_t)w * h,
              "result: depth(0) == depth_all, depth(1) follows");
        CHECK(da3_result_confidence(r, 1) == da3_result_confidence_all(r) + (size_t)w * h,
              "result: confidence accessors");
        CHECK_FAILS("result: depth(view 2) is NULL", da3_result_depth(r, 2) == NULL,
                    "view index 2", "out of range", "2 view");
        CHECK_FAILS("result: confidence(view 99) is NULL", da3_result_confidence(r, 99) == NULL,
                    "99", "out of range");
        float e[12], k[9];
        CHECK_STATUS("result: extrinsics(view 2)", da3_result_extrinsics(r, 2, e),
                     DA3_ERR_INVALID_ARGUMENT, "out of range");
        CHECK_STATUS("result: intrinsics NULL out", da3_result_intrinsics(r, 0, NULL),
                     DA3_ERR_NULL_POINTER, "out");
        if (da3_result_has_cameras(r)) {
            CHECK_OK("result: extrinsics(view 1)", da3_result_extrinsics(r, 1, e));
            CHECK_OK("result: intrinsics(view 1)", da3_result_intrinsics(r, 1, k));
        } else {
            CHECK_STATUS("result: extrinsics without a camera head",
                         da3_result_extrinsics(r, 0, e), DA3_ERR_NOT_AVAILABLE, "cameras");
        }
        CHECK_STATUS("png: view out of range", da3_result_write_depth_png(r, 2, "x.png"),
                     DA3_ERR_INVALID_ARGUMENT, "out of range");
        CHECK_STATUS("png: NULL path", da3_result_write_depth_png(r, 0, NULL),
                     DA3_ERR_NULL_POINTER, "path");
        CHECK_STATUS("png: missing directory",
                     da3_result_write_depth_png(r, 0, "/nonexistent/da3-dir/d.png"),
                     DA3_ERR_IO, "/nonexistent/da3-dir/d.png");
        da3_result_free(r);
    }

    /* Two threads inferring on one handle at once. */
    struct infer_job jobs[2] = {{model, DA3_ERR_PANIC}, {model, DA3_ERR_PANIC}};
    pthread_t t[2];
    int started = pthread_create(&t[0], NULL, infer_thread, &jobs[0]) == 0;
    started = started && pthread_create(&t[1], NULL, infer_thread, &jobs[1]) == 0;
    if (started) {
        pthread_join(t[0], NULL);
        pthread_join(t[1], NULL);
    }
    CHECK(started && jobs[0].status == DA3_OK && jobs[1].status == DA3_OK,
          "concurrent da3_infer on one model");
    da3_free(model);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(strcmp(da3_last_error_message(), "") == 0, "no error message before any failure");

    printf("== basic\n");
    test_version();
    test_status_names();
    test_create_arguments();
    test_options();
    test_infer_without_model();
    test_null_handles();
    test_thread_local_messages();

    printf("== checkpoint\n");
    test_checkpoints();

    printf("== model\n");
    const char *checkpoint = getenv("DA3_TEST_CHECKPOINT");
    if (checkpoint != NULL && *checkpoint != '\0') {
        test_with_model(checkpoint);
    } else {
        check_skip("group 'model' (argument checks of da3_infer/da3_infer_files, result "
                   "accessors, PNG output, concurrency): set DA3_TEST_CHECKPOINT to a checkpoint "
                   "directory");
    }
    return check_summary();
}
