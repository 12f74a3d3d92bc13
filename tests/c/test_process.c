/*
 * The host's process and threads (issue 11, D10 and D11), on the checkpoint in
 * DA3_TEST_CHECKPOINT (required):
 * - calls from threads with small stacks (64 KiB, 128 KiB: oneDNN overflowed such stacks)
 *   succeed and give the main thread's result;
 * - a child fork()ed after inference can run inference (CPU) instead of hanging in OpenMP;
 * - a model created by a thread that then exits serves other threads and is freed by another.
 *
 * Prints "N passed, M failed, K skipped" last (check.h) and exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "da3.h"

enum { W = 64, H = 48 };
static unsigned char g_pixels[W * H * 3];

/* Depth of one view at process_res 70 into `depth` (capacity `cap` floats); its count or 0. */
static size_t infer_depth(const da3_model *model, float *depth, size_t cap, da3_status *status) {
    da3_image view = {g_pixels, W, H, W * 3, DA3_PIXEL_RGB8};
    da3_options o;
    da3_options_default(&o, sizeof o);
    o.process_res = 70;
    da3_result *r = NULL;
    *status = da3_infer(model, &view, 1, &o, &r);
    if (*status != DA3_OK) return 0;
    size_t n = (size_t)da3_result_width(r) * da3_result_height(r);
    if (n > cap) n = 0;
    else memcpy(depth, da3_result_depth(r, 0), n * sizeof(float));
    da3_result_free(r);
    return n;
}

typedef struct {
    const da3_model *model;
    float depth[4096];
    size_t n;
    da3_status status;
} call;

static void *run_call(void *arg) {
    call *c = (call *)arg;
    c->n = infer_depth(c->model, c->depth, sizeof c->depth / sizeof c->depth[0], &c->status);
    return NULL;
}

typedef struct {
    const char *checkpoint;
    da3_model *model;
    da3_status status;
} creation;

static void *create_then_exit(void *arg) {
    creation *c = (creation *)arg;
    c->status = da3_create(c->checkpoint, false, DA3_PRECISION_FP32, &c->model);
    return NULL;
}

static void *free_model(void *arg) {
    da3_free((da3_model *)arg);
    return NULL;
}

int main(void) {
    const char *checkpoint = getenv("DA3_TEST_CHECKPOINT");
    if (!checkpoint) return check_give_up("DA3_TEST_CHECKPOINT is not set");
    for (size_t i = 0; i < sizeof g_pixels; i++) g_pixels[i] = (unsigned char)((i * 37) % 251);

    /* A model created by a thread that exits right after. */
    creation made = {checkpoint, NULL, DA3_OK};
    pthread_t creator;
    CHECK(pthread_create(&creator, NULL, create_then_exit, &made) == 0, "a thread creates the model");
    pthread_join(creator, NULL);
    CHECK(made.status == DA3_OK && made.model != NULL, "da3_create on a thread that has exited since");
    if (!made.model) return check_summary();
    da3_model *model = made.model;

    static call reference;
    reference.model = model;
    run_call(&reference);
    CHECK(reference.status == DA3_OK && reference.n > 0, "the main thread's result");

    /* D11: small stacks. */
    const size_t stacks[] = {64 * 1024, 128 * 1024};
    for (size_t s = 0; s < sizeof stacks / sizeof stacks[0]; s++) {
        static call small;
        memset(&small, 0, sizeof small);
        small.model = model;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        int set = pthread_attr_setstacksize(&attr, stacks[s]);
        pthread_t t;
        int started = set == 0 ? pthread_create(&t, &attr, run_call, &small) : set;
        pthread_attr_destroy(&attr);
        if (started != 0) {
            check_skip("group 'stack of %zu KiB': no such thread here (error %d)", stacks[s] / 1024, started);
            continue;
        }
        pthread_join(t, NULL);
        CHECK(small.status == DA3_OK, "da3_infer from a thread with a %zu KiB stack", stacks[s] / 1024);
        CHECK(small.n == reference.n && memcmp(small.depth, reference.depth, small.n * sizeof(float)) == 0,
              "... gives the main thread's depth");
    }

    /* D10: a child forked after inference infers (libtorch's OpenMP pool does not survive a
     * fork; the library makes the child's libtorch single-threaded). */
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        alarm(120); /* a hang becomes SIGALRM, not a wedged test */
        static call in_child;
        in_child.model = model;
        run_call(&in_child);
        int same = in_child.n == reference.n;
        for (size_t i = 0; same && i < in_child.n; i++) {
            float d = in_child.depth[i] - reference.depth[i];
            same = d < 1e-4f * reference.depth[i] && -d < 1e-4f * reference.depth[i];
        }
        _exit(in_child.status == DA3_OK && same ? 0 : 3);
    }
    int wstatus = 0;
    CHECK(child > 0 && waitpid(child, &wstatus, 0) == child, "fork and wait");
    CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
          "the forked child's da3_infer returns the parent's depth (exit %d, signal %d)",
          WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
    static call after;
    after.model = model;
    run_call(&after);
    CHECK(after.status == DA3_OK && after.n == reference.n &&
              memcmp(after.depth, reference.depth, after.n * sizeof(float)) == 0,
          "the parent still infers after the fork");

    pthread_t freer;
    CHECK(pthread_create(&freer, NULL, free_model, model) == 0, "another thread frees the model");
    pthread_join(freer, NULL);
    return check_summary();
}
