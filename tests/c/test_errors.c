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
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "da3.h"

static int g_passed, g_failed, g_skipped;

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_WORDS ((const char *const[]){NULL})

static void pass(const char *name) {
    g_passed++;
    printf("ok      %s\n", name);
}

static void failf(const char *name, const char *why, const char *detail) {
    g_failed++;
    printf("FAIL    %s: %s%s%s\n", name, why, detail ? ": " : "", detail ? detail : "");
}

static void check(const char *name, int cond, const char *detail) {
    if (cond) {
        pass(name);
    } else {
        failf(name, "condition false", detail);
    }
}

/* Checks a status and, for errors, that the thread's message contains every word. */
static void expect(const char *name, da3_status got, da3_status want, const char *const *words) {
    const char *msg = da3_last_error_message();
    if (got != want) {
        char detail[1024];
        snprintf(detail, sizeof detail, "got %s, want %s (message: \"%s\")",
                 da3_status_name((int)got), da3_status_name((int)want), msg);
        failf(name, "wrong status", detail);
        return;
    }
    for (; want != DA3_OK && *words != NULL; words++) {
        if (strstr(msg, *words) == NULL) {
            char detail[1024];
            snprintf(detail, sizeof detail, "message \"%s\" lacks \"%s\"", msg, *words);
            failf(name, "wrong message", detail);
            return;
        }
    }
    pass(name);
}

/* For functions that report failure by returning NULL / 0: checks the message words. */
static void expect_failure_value(const char *name, int failed, const char *const *words) {
    if (!failed) {
        failf(name, "call did not fail", NULL);
        return;
    }
    expect(name, DA3_ERR_INVALID_ARGUMENT, DA3_ERR_INVALID_ARGUMENT, words);
}

/* ---------------------------------------------------------------------------------------- */
/* basic                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", DA3_VERSION_MAJOR, DA3_VERSION_MINOR,
             DA3_VERSION_PATCH);
    check("version string matches DA3_VERSION_* macros", strcmp(da3_version(), expected) == 0,
          da3_version());
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
            failf("da3_status_name", "wrong name for", names[i]);
            ok = 0;
        }
    }
    ok = ok && strcmp(da3_status_name(99), "DA3_UNKNOWN_STATUS") == 0 &&
         strcmp(da3_status_name(-1), "DA3_UNKNOWN_STATUS") == 0;
    check("da3_status_name covers every code and unknown values", ok, NULL);
    check("da3_precision_name", strcmp(da3_precision_name(DA3_PRECISION_BF16), "bf16") == 0 &&
                                    strcmp(da3_precision_name(77), "unknown") == 0,
          NULL);
}

static void test_create_arguments(void) {
    da3_model *model = (da3_model *)&model; /* garbage: must be reset to NULL */
    expect("da3_create: NULL model string", da3_create(NULL, false, DA3_PRECISION_AUTO, &model),
           DA3_ERR_NULL_POINTER, WORDS("model", "NULL"));
    check("da3_create: *out is NULL after failure", model == NULL, NULL);
    expect("da3_create: NULL out pointer",
           da3_create("/nonexistent", false, DA3_PRECISION_AUTO, NULL), DA3_ERR_NULL_POINTER,
           WORDS("out", "NULL"));
    expect("da3_create: unknown precision", da3_create("/nonexistent", false, 42, &model),
           DA3_ERR_INVALID_ARGUMENT, WORDS("precision", "42"));
}

static void test_options(void) {
    da3_options o;
    expect("da3_options_default: NULL", da3_options_default(NULL, sizeof o),
           DA3_ERR_NULL_POINTER, WORDS("options"));
    expect("da3_options_default: size 0", da3_options_default(&o, 0), DA3_ERR_INVALID_ARGUMENT,
           WORDS("struct_size"));
    expect("da3_options_default: size from a newer header", da3_options_default(&o, 4096),
           DA3_ERR_UNSUPPORTED, WORDS("struct_size", "4096", "newer"));
    expect("da3_options_default", da3_options_default(&o, sizeof o), DA3_OK, NO_WORDS);
    check("da3_options_default: official defaults",
          o.struct_size == sizeof o && o.process_res == 504 &&
              o.resize_method == DA3_RESIZE_UPPER_BOUND_RESIZE &&
              o.ref_view_strategy == DA3_REF_VIEW_SADDLE_BALANCED,
          NULL);
    expect("da3_options_validate: NULL means defaults", da3_options_validate(NULL), DA3_OK,
           NO_WORDS);

    da3_options bad = o;
    bad.resize_method = 99;
    expect("options: resize_method = 99", da3_options_validate(&bad), DA3_ERR_INVALID_ARGUMENT,
           WORDS("resize_method", "99"));
    bad = o;
    bad.ref_view_strategy = 99;
    expect("options: ref_view_strategy = 99", da3_options_validate(&bad),
           DA3_ERR_INVALID_ARGUMENT, WORDS("ref_view_strategy", "99"));
    bad = o;
    bad.process_res = 0;
    expect("options: process_res = 0", da3_options_validate(&bad), DA3_ERR_INVALID_ARGUMENT,
           WORDS("process_res", "0"));
    bad = o;
    bad.process_res = 100000;
    expect("options: process_res = 100000", da3_options_validate(&bad),
           DA3_ERR_INVALID_ARGUMENT, WORDS("process_res", "100000"));
    bad = o;
    bad.struct_size = 0;
    expect("options: struct_size = 0 (not initialised)", da3_options_validate(&bad),
           DA3_ERR_INVALID_ARGUMENT, WORDS("struct_size", "da3_options_default"));
}

static void test_infer_without_model(void) {
    static const uint8_t pixels[2 * 2 * 3] = {0};
    da3_image view = {pixels, 2, 2, 6, DA3_PIXEL_RGB8};
    da3_result *result = (da3_result *)&result;
    expect("da3_infer: NULL model", da3_infer(NULL, &view, 1, NULL, &result),
           DA3_ERR_NULL_POINTER, WORDS("model", "NULL"));
    check("da3_infer: *out is NULL after failure", result == NULL, NULL);
    /* A NULL model is reported before the (here bogus) views are looked at. */
    expect("da3_infer: NULL model before bad views", da3_infer(NULL, NULL, 0, NULL, &result),
           DA3_ERR_NULL_POINTER, WORDS("model"));
    expect("da3_infer: NULL out", da3_infer(NULL, &view, 1, NULL, NULL), DA3_ERR_NULL_POINTER,
           WORDS("out"));
    const char *paths[] = {"a.png"};
    expect("da3_infer_files: NULL model", da3_infer_files(NULL, paths, 1, NULL, &result),
           DA3_ERR_NULL_POINTER, WORDS("model"));
}

static void test_null_handles(void) {
    float m[12];
    expect_failure_value("da3_result_view_count(NULL) is 0", da3_result_view_count(NULL) == 0,
                         WORDS("result", "NULL"));
    expect_failure_value("da3_result_width(NULL) is 0", da3_result_width(NULL) == 0,
                         WORDS("result"));
    expect_failure_value("da3_result_height(NULL) is 0", da3_result_height(NULL) == 0,
                         WORDS("result"));
    expect_failure_value("da3_result_depth(NULL) is NULL", da3_result_depth(NULL, 0) == NULL,
                         WORDS("result"));
    expect_failure_value("da3_result_confidence_all(NULL) is NULL",
                         da3_result_confidence_all(NULL) == NULL, WORDS("result"));
    expect("da3_result_extrinsics(NULL)", da3_result_extrinsics(NULL, 0, m),
           DA3_ERR_NULL_POINTER, WORDS("result"));
    expect("da3_result_intrinsics(NULL)", da3_result_intrinsics(NULL, 0, m),
           DA3_ERR_NULL_POINTER, WORDS("result"));
    expect("da3_result_write_depth_png(NULL)", da3_result_write_depth_png(NULL, 0, "x.png"),
           DA3_ERR_NULL_POINTER, WORDS("result"));
    expect_failure_value("da3_model_preset(NULL) is NULL", da3_model_preset(NULL) == NULL,
                         WORDS("model"));
    expect_failure_value("da3_model_device(NULL) is NULL", da3_model_device(NULL) == NULL,
                         WORDS("model"));
    check("da3_model_precision(NULL) is AUTO", da3_model_precision(NULL) == DA3_PRECISION_AUTO,
          NULL);
    da3_free(NULL);
    da3_result_free(NULL);
    pass("da3_free(NULL) and da3_result_free(NULL) are no-ops");
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
        failf("per-thread error messages", "pthread_create failed", NULL);
        return;
    }
    pthread_join(t, NULL);
    check("per-thread error messages: other thread starts empty and keeps its own", ok, NULL);
    check("per-thread error messages: this thread's message is unchanged",
          strstr(da3_last_error_message(), "model") != NULL, da3_last_error_message());
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
    expect("da3_create: nonexistent directory",
           da3_create(missing, false, DA3_PRECISION_AUTO, &model), DA3_ERR_MODEL_NOT_FOUND,
           WORDS(missing));
    const char *repo = "da3-test-no-such-org/no-such-model";
    expect("da3_create: unknown repo id", da3_create(repo, false, DA3_PRECISION_AUTO, &model),
           DA3_ERR_MODEL_NOT_FOUND, WORDS(repo));
    check("da3_create: no handle on failure", model == NULL, NULL);

    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/da3-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        failf("checkpoint fixtures", "mkdtemp failed", dir);
        return;
    }

    /* Corrupt: valid config, garbage weights. */
    static const char small[] = "{\"model_name\": \"da3-small\"}";
    static const char garbage[] = "this is not a safetensors file at all";
    if (write_file(dir, "config.json", small, strlen(small)) != 0 ||
        write_file(dir, "model.safetensors", garbage, strlen(garbage)) != 0) {
        failf("checkpoint fixtures", "cannot write", dir);
    } else {
        expect("da3_create: corrupt model.safetensors",
               da3_create(dir, false, DA3_PRECISION_FP32, &model), DA3_ERR_CHECKPOINT,
               WORDS("safetensors"));
        da3_free(model);
        model = NULL;
    }

    /* Mismatched: says da3-base, holds a single tensor of another shape. */
    static const char base[] = "{\"model_name\": \"da3-base\"}";
    if (write_file(dir, "config.json", base, strlen(base)) != 0 ||
        write_safetensors(dir, "backbone.pretrained.cls_token", "[1,1,384]", 384) != 0) {
        failf("checkpoint fixtures", "cannot write", dir);
    } else {
        expect("da3_create: mismatched checkpoint (da3-base config, foreign tensors)",
               da3_create(dir, false, DA3_PRECISION_FP32, &model), DA3_ERR_CHECKPOINT,
               WORDS("checkpoint"));
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
    expect("da3_create: DA3_TEST_CHECKPOINT", st, DA3_OK, NO_WORDS);
    if (st != DA3_OK) {
        return;
    }
    check("model queries: preset, device, precision",
          da3_model_preset(model) && *da3_model_preset(model) && da3_model_device(model) &&
              *da3_model_device(model) && da3_model_precision(model) != DA3_PRECISION_AUTO,
          NULL);

    make_images();
    da3_options o;
    da3_options_default(&o, sizeof o);
    o.process_res = 56;
    da3_image good[2] = {{g_rgb, W, H, W * 3, DA3_PIXEL_RGB8},
                         {g_bgra, W, H, W * 4 + 16, DA3_PIXEL_BGRA8}};
    da3_image v[2];
    da3_result *r = NULL;

    expect("da3_infer: zero views", da3_infer(model, good, 0, &o, &r), DA3_ERR_INVALID_ARGUMENT,
           WORDS("n_views", "0"));
    expect("da3_infer: NULL views", da3_infer(model, NULL, 2, &o, &r), DA3_ERR_NULL_POINTER,
           WORDS("views", "NULL"));
    memcpy(v, good, sizeof v);
    v[0].data = NULL;
    expect("da3_infer: NULL data", da3_infer(model, v, 2, &o, &r), DA3_ERR_NULL_POINTER,
           WORDS("views[0].data", "NULL"));
    memcpy(v, good, sizeof v);
    v[1].width = 0;
    expect("da3_infer: zero width", da3_infer(model, v, 2, &o, &r), DA3_ERR_INVALID_ARGUMENT,
           WORDS("views[1]", "0x48"));
    memcpy(v, good, sizeof v);
    v[0].height = 0;
    expect("da3_infer: zero height", da3_infer(model, v, 2, &o, &r), DA3_ERR_INVALID_ARGUMENT,
           WORDS("views[0]", "64x0"));
    memcpy(v, good, sizeof v);
    v[0].stride = W * 3 - 1;
    expect("da3_infer: stride < width * bpp", da3_infer(model, v, 2, &o, &r),
           DA3_ERR_INVALID_ARGUMENT, WORDS("views[0].stride", "191", "192"));
    memcpy(v, good, sizeof v);
    v[1].stride = W * 3; /* fine for RGB, too small for BGRA */
    expect("da3_infer: stride too small for a 4-byte format", da3_infer(model, v, 2, &o, &r),
           DA3_ERR_INVALID_ARGUMENT, WORDS("views[1].stride", "256"));
    memcpy(v, good, sizeof v);
    v[1].format = 9;
    expect("da3_infer: unknown pixel format", da3_infer(model, v, 2, &o, &r),
           DA3_ERR_INVALID_ARGUMENT, WORDS("views[1].format", "9"));

    da3_options bad = o;
    bad.resize_method = 99;
    expect("da3_infer: resize_method = 99", da3_infer(model, good, 2, &bad, &r),
           DA3_ERR_INVALID_ARGUMENT, WORDS("resize_method", "99"));
    bad = o;
    bad.ref_view_strategy = 99;
    expect("da3_infer: ref_view_strategy = 99", da3_infer(model, good, 2, &bad, &r),
           DA3_ERR_INVALID_ARGUMENT, WORDS("ref_view_strategy", "99"));
    bad = o;
    bad.process_res = 0;
    expect("da3_infer: process_res = 0", da3_infer(model, good, 2, &bad, &r),
           DA3_ERR_INVALID_ARGUMENT, WORDS("process_res", "0"));
    check("da3_infer: no result after failures", r == NULL, NULL);

    const char *paths[] = {"/nonexistent/da3-missing.png", NULL};
    expect("da3_infer_files: zero paths", da3_infer_files(model, paths, 0, &o, &r),
           DA3_ERR_INVALID_ARGUMENT, WORDS("n_paths", "0"));
    expect("da3_infer_files: NULL paths", da3_infer_files(model, NULL, 1, &o, &r),
           DA3_ERR_NULL_POINTER, WORDS("paths"));
    expect("da3_infer_files: NULL paths[1]", da3_infer_files(model, paths, 2, &o, &r),
           DA3_ERR_NULL_POINTER, WORDS("paths[1]"));
    expect("da3_infer_files: missing file", da3_infer_files(model, paths, 1, &o, &r),
           DA3_ERR_IMAGE, WORDS("/nonexistent/da3-missing.png"));

    st = da3_infer(model, good, 2, &o, &r);
    expect("da3_infer: two views (RGB + padded BGRA)", st, DA3_OK, NO_WORDS);
    if (st == DA3_OK) {
        size_t n = da3_result_view_count(r);
        uint32_t w = da3_result_width(r), h = da3_result_height(r);
        check("result: 2 views, size a positive multiple of 14",
              n == 2 && w > 0 && h > 0 && w % 14 == 0 && h % 14 == 0, NULL);
        const float *all = da3_result_depth_all(r);
        check("result: depth(0) == depth_all, depth(1) follows",
              all && da3_result_depth(r, 0) == all &&
                  da3_result_depth(r, 1) == all + (size_t)w * h,
              NULL);
        check("result: confidence accessors",
              da3_result_confidence(r, 1) == da3_result_confidence_all(r) + (size_t)w * h, NULL);
        expect_failure_value("result: depth(view 2) is NULL", da3_result_depth(r, 2) == NULL,
                             WORDS("view index 2", "out of range", "2 view"));
        expect_failure_value("result: confidence(view 99) is NULL",
                             da3_result_confidence(r, 99) == NULL, WORDS("99", "out of range"));
        float e[12], k[9];
        expect("result: extrinsics(view 2)", da3_result_extrinsics(r, 2, e),
               DA3_ERR_INVALID_ARGUMENT, WORDS("out of range"));
        expect("result: intrinsics NULL out", da3_result_intrinsics(r, 0, NULL),
               DA3_ERR_NULL_POINTER, WORDS("out"));
        if (da3_result_has_cameras(r)) {
            expect("result: extrinsics(view 1)", da3_result_extrinsics(r, 1, e), DA3_OK, NO_WORDS);
            expect("result: intrinsics(view 1)", da3_result_intrinsics(r, 1, k), DA3_OK, NO_WORDS);
        } else {
            expect("result: extrinsics without a camera head", da3_result_extrinsics(r, 0, e),
                   DA3_ERR_NOT_AVAILABLE, WORDS("cameras"));
        }
        expect("png: view out of range", da3_result_write_depth_png(r, 2, "x.png"),
               DA3_ERR_INVALID_ARGUMENT, WORDS("out of range"));
        expect("png: NULL path", da3_result_write_depth_png(r, 0, NULL), DA3_ERR_NULL_POINTER,
               WORDS("path"));
        expect("png: missing directory",
               da3_result_write_depth_png(r, 0, "/nonexistent/da3-dir/d.png"), DA3_ERR_IO,
               WORDS("/nonexistent/da3-dir/d.png"));
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
    check("concurrent da3_infer on one model", started && jobs[0].status == DA3_OK &&
                                                   jobs[1].status == DA3_OK,
          NULL);
    da3_free(model);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    check("no error message before any failure", strcmp(da3_last_error_message(), "") == 0,
          da3_last_error_message());

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
        printf("skipped group 'model' (argument checks of da3_infer/da3_infer_files, result "
               "accessors, PNG output, concurrency): set DA3_TEST_CHECKPOINT to a checkpoint "
               "directory\n");
        g_skipped++;
    }
    printf("%d passed, %d failed, %d skipped\n", g_passed, g_failed, g_skipped);
    return g_failed == 0 ? 0 : 1;
}
