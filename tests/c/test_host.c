/*
 * The host in charge, seen from C: the log callback and level, the cancel token (before a
 * call and from another thread during one; the model stays usable; older da3_options sizes
 * never read the token), da3_load_options and da3_create_with_options (progress, abort,
 * threads, devices), on the checkpoint in DA3_TEST_CHECKPOINT (required).
 *
 * Prints "N passed, M failed, K skipped" last (check.h) and exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "da3.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- log ---------------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    int count;
    int info_loading; /* an info note "loading ..." */
    int bad_level;    /* a level outside ERROR..DEBUG */
    int wrong_user_data;
} log_capture;

static log_capture g_log = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};

static void on_log(da3_log_level level, const char *message, void *user_data) {
    log_capture *c = (log_capture *)user_data;
    if (c != &g_log) {
        g_log.wrong_user_data++;
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->count++;
    if (level < DA3_LOG_ERROR || level > DA3_LOG_DEBUG) {
        c->bad_level++;
    }
    if (level == DA3_LOG_INFO && strncmp(message, "loading ", 8) == 0) {
        c->info_loading++;
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- load progress -------------------------------------------------------------------- */

typedef struct {
    int calls;
    int decreasing;
    float last;
    char first_stage[16];
    char last_stage[16];
    int stages_read, stages_build;
    int abort_in_build; /* return false once "build" passes 0.5 */
} progress_capture;

static bool on_progress(float fraction, const char *stage, void *user_data) {
    progress_capture *p = (progress_capture *)user_data;
    if (p->calls == 0) {
        snprintf(p->first_stage, sizeof p->first_stage, "%s", stage);
    } else if (fraction < p->last) {
        p->decreasing++;
    }
    snprintf(p->last_stage, sizeof p->last_stage, "%s", stage);
    p->calls++;
    p->last = fraction;
    p->stages_read += strcmp(stage, "read") == 0;
    p->stages_build += strcmp(stage, "build") == 0;
    return !(p->abort_in_build && strcmp(stage, "build") == 0 && fraction > 0.5f);
}

/* ---- views ---------------------------------------------------------------------------- */

#define W 320u
#define H 240u
#define VIEWS 4

static unsigned char g_pixels[VIEWS][W * H * 3];
static da3_image g_views[VIEWS];

static void make_images(void) {
    for (unsigned v = 0; v < VIEWS; v++) {
        for (unsigned i = 0; i < W * H; i++) {
            unsigned x = i % W, y = i / W;
            g_pixels[v][3 * i + 0] = (unsigned char)((x * 3 + v * 50) % 256);
            g_pixels[v][3 * i + 1] = (unsigned char)((y * 5 + v * 30) % 256);
            g_pixels[v][3 * i + 2] = (unsigned char)((x * y + v * 70) % 256);
        }
        g_views[v] = (da3_image){g_pixels[v], W, H, W * 3, DA3_PIXEL_RGB8};
    }
}

typedef struct {
    da3_cancel_token *token;
    double delay_s;
    double cancelled_at;
} canceller_args;

static void *canceller(void *arg) {
    canceller_args *a = (canceller_args *)arg;
    struct timespec d = {(time_t)a->delay_s, (long)((a->delay_s - (double)(time_t)a->delay_s) * 1e9)};
    nanosleep(&d, NULL);
    a->cancelled_at = now_s();
    da3_cancel_token_cancel(a->token);
    return NULL;
}

int main(void) {
    const char *checkpoint = getenv("DA3_TEST_CHECKPOINT");
    if (checkpoint == NULL || checkpoint[0] == '\0') {
        return check_give_up("DA3_TEST_CHECKPOINT is not set");
    }
    make_images();
    CHECK(strcmp(da3_status_name(DA3_ERR_CANCELLED), "DA3_ERR_CANCELLED") == 0 && DA3_ERR_CANCELLED == 12,
          "DA3_ERR_CANCELLED is 12 and named");

    /* Log: callback, level, errors. */
    CHECK_OK("da3_log_set(callback)", da3_log_set(on_log, &g_log));
    CHECK_OK("da3_log_set_level(INFO)", da3_log_set_level(DA3_LOG_INFO));
    CHECK(da3_log_get_level() == DA3_LOG_INFO, "da3_log_get_level is INFO");
    CHECK_STATUS("da3_log_set_level(7)", da3_log_set_level(7), DA3_ERR_INVALID_ARGUMENT, "level", "7");
    CHECK(da3_log_get_level() == DA3_LOG_INFO, "a bad level changes nothing");

    /* Load options: sizes, reserved, progress, threads, devices. */
    da3_load_options lo;
    CHECK_STATUS("da3_load_options_default(NULL)", da3_load_options_default(NULL, sizeof lo),
                 DA3_ERR_NULL_POINTER, "load_options");
    CHECK_STATUS("da3_load_options_default(size 12)", da3_load_options_default(&lo, 12),
                 DA3_ERR_INVALID_ARGUMENT, "struct_size", "12");
    CHECK_STATUS("da3_load_options_default(size + 8)", da3_load_options_default(&lo, sizeof lo + 8),
                 DA3_ERR_UNSUPPORTED, "newer da3.h");
    CHECK_OK("da3_load_options_default", da3_load_options_default(&lo, sizeof lo));
    CHECK(lo.struct_size == sizeof lo && lo.torch_threads == 0 && lo.preprocess_threads == 0 &&
              lo.devices == NULL && lo.progress == NULL,
          "defaults: no threads, default devices, no callback");

    da3_model *model = (da3_model *)&lo; /* must become NULL on failure */
    lo.reserved_0 = 1;
    CHECK_STATUS("reserved_0 = 1", da3_create_with_options(checkpoint, false, DA3_PRECISION_FP32, &lo, &model),
                 DA3_ERR_INVALID_ARGUMENT, "reserved_0");
    CHECK(model == NULL, "*out is NULL after a failure");
    lo.reserved_0 = 0;
    lo.devices = "gpu:7";
    CHECK_STATUS("devices = gpu:7", da3_create_with_options(checkpoint, false, DA3_PRECISION_FP32, &lo, &model),
                 DA3_ERR_INVALID_ARGUMENT, "load_options.devices");

    progress_capture aborting;
    memset(&aborting, 0, sizeof aborting);
    aborting.abort_in_build = 1;
    lo.devices = "cpu";
    lo.progress = on_progress;
    lo.progress_user_data = &aborting;
    CHECK_STATUS("progress returning false aborts the load",
                 da3_create_with_options(checkpoint, false, DA3_PRECISION_FP32, &lo, &model), DA3_ERR_CANCELLED,
                 "cancelled", "progress callback");
    CHECK(model == NULL, "no model after an aborted load");
    CHECK(strcmp(aborting.last_stage, "build") == 0, "aborted while building (last stage '%s')",
          aborting.last_stage);

    progress_capture progress;
    memset(&progress, 0, sizeof progress);
    lo.progress_user_data = &progress;
    lo.torch_threads = 2;
    lo.preprocess_threads = 1;
    if (!CHECK_OK("da3_create_with_options(progress, threads, cpu)",
                  da3_create_with_options(checkpoint, false, DA3_PRECISION_AUTO, &lo, &model))) {
        return check_give_up("no model: %s", da3_last_error_message());
    }
    CHECK(strcmp(progress.first_stage, "resolve") == 0, "first stage 'resolve' (got '%s')", progress.first_stage);
    CHECK(strcmp(progress.last_stage, "done") == 0 && progress.last == 1.0f, "last: 'done' at 1 (got '%s' %g)",
          progress.last_stage, (double)progress.last);
    CHECK(progress.decreasing == 0, "fractions never decrease");
    CHECK(progress.stages_read > 0 && progress.stages_build > 0, "'read' (%d) and 'build' (%d) reported",
          progress.stages_read, progress.stages_build);
    CHECK(strcmp(da3_model_device(model), "cpu") == 0 && da3_model_precision(model) == DA3_PRECISION_FP32,
          "on the device asked for, auto precision resolved to fp32");
    CHECK(g_log.info_loading > 0 && g_log.bad_level == 0 && g_log.wrong_user_data == 0,
          "the callback heard the loading note (%d) with its user_data", g_log.info_loading);

    /* Cancel token basics. */
    CHECK_STATUS("da3_cancel_token_new(NULL)", da3_cancel_token_new(NULL), DA3_ERR_NULL_POINTER, "out");
    CHECK_STATUS("da3_cancel_token_cancel(NULL)", da3_cancel_token_cancel(NULL), DA3_ERR_NULL_POINTER, "token");
    CHECK_STATUS("da3_cancel_token_reset(NULL)", da3_cancel_token_reset(NULL), DA3_ERR_NULL_POINTER, "token");
    CHECK(!da3_cancel_token_is_cancelled(NULL), "a NULL token is not cancelled");
    da3_cancel_token_free(NULL);
    da3_cancel_token *token = NULL;
    if (!CHECK_OK("da3_cancel_token_new", da3_cancel_token_new(&token))) {
        return check_give_up("no token");
    }
    CHECK(!da3_cancel_token_is_cancelled(token), "a new token is not cancelled");

    da3_options opts;
    da3_options_default(&opts, sizeof opts);
    CHECK(sizeof opts == offsetof(da3_options, cancel) + sizeof(void *) && opts.cancel == NULL,
          "cancel is the last field, NULL by default");
    opts.process_res = 112;
    opts.cancel = token;
    CHECK_OK("da3_options_validate with a token", da3_options_validate(&opts));

    /* Cancelled before the call: stops at once, out is NULL. */
    da3_cancel_token_cancel(token);
    CHECK(da3_cancel_token_is_cancelled(token), "cancelled");
    da3_result *result = (da3_result *)&opts;
    double t0 = now_s();
    CHECK_STATUS("da3_infer with a cancelled token", da3_infer(model, g_views, 2, &opts, &result),
                 DA3_ERR_CANCELLED, "cancelled", "before preprocessing");
    CHECK(now_s() - t0 < 0.5, "returned at once (%.3f s)", now_s() - t0);
    CHECK(result == NULL, "*out is NULL after a cancelled call");
    da3_scene scenes[2] = {{g_views, 2}, {g_views + 2, 1}};
    da3_result *results[2];
    da3_status statuses[2];
    CHECK_STATUS("da3_infer_scenes with a cancelled token",
                 da3_infer_scenes(model, scenes, 2, &opts, results, statuses), DA3_ERR_CANCELLED, "scenes[0]");
    CHECK(statuses[0] == DA3_ERR_CANCELLED && statuses[1] == DA3_ERR_CANCELLED && results[0] == NULL &&
              results[1] == NULL,
          "every scene cancelled");

    /* An older da3_options (without the field) never reads it: the call runs. */
    da3_options old;
    da3_options_default(&old, offsetof(da3_options, cancel));
    memcpy(&old, &opts, offsetof(da3_options, cancel));
    old.struct_size = (uint32_t)offsetof(da3_options, cancel);
    old.cancel = token; /* beyond struct_size: ignored */
    if (CHECK_OK("the previous da3_options size ignores the token", da3_infer(model, g_views, 2, &old, &result))) {
        da3_result_free(result);
    }

    /* Reset: runs again. */
    CHECK_OK("da3_cancel_token_reset", da3_cancel_token_reset(token));
    if (CHECK_OK("da3_infer after reset", da3_infer(model, g_views, 2, &opts, &result))) {
        da3_result_free(result);
    }

    /* From another thread while a 4-view forward at 336 runs. */
    opts.process_res = 336;
    t0 = now_s();
    da3_result *reference = NULL;
    CHECK_OK("the 4-view call uncancelled", da3_infer(model, g_views, VIEWS, &opts, &reference));
    double whole = now_s() - t0;
    canceller_args args = {token, whole / 3, 0};
    pthread_t thread;
    t0 = now_s();
    pthread_create(&thread, NULL, canceller, &args);
    da3_status status = da3_infer(model, g_views, VIEWS, &opts, &result);
    double returned = now_s();
    pthread_join(thread, NULL);
    CHECK_STATUS("cancelled from another thread", status, DA3_ERR_CANCELLED, "cancelled");
    CHECK(result == NULL, "*out is NULL");
    printf("# whole call %.2f s, cancelled after %.2f s, returned %.2f s after the cancel\n", whole,
           args.cancelled_at - t0, returned - args.cancelled_at);
    CHECK(returned - t0 < 0.9 * whole, "stopped before the end (%.2f s of %.2f s)", returned - t0, whole);

    /* The model stays usable: the same call gives the same depth. */
    CHECK_OK("reset after the cancel", da3_cancel_token_reset(token));
    if (CHECK_OK("da3_infer after a cancelled call", da3_infer(model, g_views, VIEWS, &opts, &result))) {
        size_t n = (size_t)VIEWS * da3_result_width(result) * da3_result_height(result);
        CHECK(reference != NULL && memcmp(da3_result_depth_all(result), da3_result_depth_all(reference),
                                          n * sizeof(float)) == 0,
              "same depth as before the cancelled call");
        da3_result_free(result);
    }
    da3_result_free(reference);

    /* Back to stderr; nothing reaches the callback afterwards. */
    CHECK_OK("da3_log_set(NULL)", da3_log_set(NULL, NULL));
    int heard = g_log.count;
    da3_free(model);
    CHECK_OK("da3_create_with_options(NULL options)",
             da3_create_with_options(checkpoint, false, DA3_PRECISION_FP32, NULL, &model));
    CHECK(g_log.count == heard, "no note after da3_log_set(NULL)");
    CHECK_OK("da3_log_set_level(WARN)", da3_log_set_level(DA3_LOG_WARN));
    da3_free(model);
    da3_cancel_token_free(token);
    return check_summary();
}
