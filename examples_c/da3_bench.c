/*
 * da3_bench -- time libda3 with use_accelerate off and on.
 *
 *   da3_bench --model DIR [--views 1,4,16] [--precision auto|fp32|fp16|bf16]
 *             [--accelerate off|on|both] [--mode forward|e2e|both] [--warmup 3]
 *             [--iters 20] [--frame 640x480] [--input 336x504]
 *
 * For every accelerate setting (one model load each), mode and view count it runs --warmup
 * untimed calls, then --iters timed ones, and prints one JSON object per line on stdout:
 *
 *   {"impl":"libda3","model":"da3-large","views":1,"precision":"bf16","accelerate":true,
 *    "mode":"forward","median_ms":1.0,"min_ms":1.0,"views_per_s":1.0,"peak_mib":1.0,
 *    "loaded_mib":1.0,"device":"cuda:0","iters":20}
 *
 * and a table on stderr. Modes:
 *   e2e      N RGB8 frames of --frame WIDTHxHEIGHT through da3_infer (preprocessing,
 *            forward, results copied to the host): the official inference() path.
 *   forward  N normalised float views of --input HEIGHTxWIDTH through
 *            da3_infer_preprocessed (forward and results copied to the host).
 * Frames are a deterministic synthetic scene (sky gradient, a ground plane with a
 * perspective checkerboard, a few shaded boxes; the camera moves sideways from view to
 * view), not noise, so depth and reference-view selection see structure.
 * Times are wall-clock per call (each call returns with its results on the host).
 * median_ms / min_ms are over the timed calls; views_per_s = views / median seconds;
 * peak_mib is the GPU caching allocator's peak of allocated bytes (what
 * torch.cuda.max_memory_allocated reports) from just before the warm-up to the end of the
 * timed calls, null on the CPU; loaded_mib the bytes allocated right after da3_create (the
 * weights), null on the CPU.
 *
 * Exit status: 0 on success, 1 when libda3 reports an error, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "da3.h"

#define MAX_VIEW_COUNTS 32

typedef struct {
    const char *model;
    size_t views[MAX_VIEW_COUNTS];
    size_t view_counts;
    da3_precision precision;
    bool accelerate[2]; /* [off, on] */
    bool mode_forward, mode_e2e;
    int warmup, iters;
    uint32_t frame_w, frame_h;
    uint32_t input_h, input_w;
    char loaded_mib[32]; /* allocated right after da3_create (the weights), "null" on the CPU */
} config;

static void usage(FILE *to) {
    fprintf(to,
            "usage: da3_bench --model DIR [--views 1,4,16] [--precision auto|fp32|fp16|bf16]\n"
            "                 [--accelerate off|on|both] [--mode forward|e2e|both] [--warmup 3]\n"
            "                 [--iters 20] [--frame 640x480] [--input 336x504]\n"
            "  --frame WxH   e2e: RGB8 frame width x height (default 640x480)\n"
            "  --input HxW   forward: network input height x width, multiples of 14 (default 336x504)\n");
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || v == 0 || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_pair(const char *s, uint32_t *a, uint32_t *b) {
    char *end = NULL;
    unsigned long x = strtoul(s, &end, 10);
    if (end == s || *end != 'x' || x == 0 || x > 16384) return -1;
    const char *rest = end + 1;
    unsigned long y = strtoul(rest, &end, 10);
    if (end == rest || *end != '\0' || y == 0 || y > 16384) return -1;
    *a = (uint32_t)x;
    *b = (uint32_t)y;
    return 0;
}

static int parse_views(const char *s, config *c) {
    c->view_counts = 0;
    const char *p = s;
    while (*p) {
        char *end = NULL;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v == 0 || v > 4096 || c->view_counts == MAX_VIEW_COUNTS) return -1;
        c->views[c->view_counts++] = (size_t)v;
        if (*end == ',') end++;
        else if (*end != '\0') return -1;
        p = end;
    }
    return c->view_counts ? 0 : -1;
}

static int parse_args(int argc, char **argv, config *c) {
    memset(c, 0, sizeof *c);
    c->views[0] = 1;
    c->views[1] = 4;
    c->views[2] = 16;
    c->view_counts = 3;
    c->precision = DA3_PRECISION_AUTO;
    c->accelerate[0] = c->accelerate[1] = true;
    c->mode_forward = c->mode_e2e = true;
    c->warmup = 3;
    c->iters = 20;
    c->frame_w = 640;
    c->frame_h = 480;
    c->input_h = 336;
    c->input_w = 504;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "da3_bench: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        unsigned long n = 0;
        if (!strcmp(a, "--model")) {
            c->model = v;
        } else if (!strcmp(a, "--views")) {
            if (parse_views(v, c)) goto bad;
        } else if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "auto")) c->precision = DA3_PRECISION_AUTO;
            else if (!strcmp(v, "fp32")) c->precision = DA3_PRECISION_FP32;
            else if (!strcmp(v, "fp16")) c->precision = DA3_PRECISION_FP16;
            else if (!strcmp(v, "bf16")) c->precision = DA3_PRECISION_BF16;
            else goto bad;
        } else if (!strcmp(a, "--accelerate")) {
            if (!strcmp(v, "off")) c->accelerate[0] = true, c->accelerate[1] = false;
            else if (!strcmp(v, "on")) c->accelerate[0] = false, c->accelerate[1] = true;
            else if (!strcmp(v, "both")) c->accelerate[0] = c->accelerate[1] = true;
            else goto bad;
        } else if (!strcmp(a, "--mode")) {
            if (!strcmp(v, "forward")) c->mode_forward = true, c->mode_e2e = false;
            else if (!strcmp(v, "e2e")) c->mode_forward = false, c->mode_e2e = true;
            else if (!strcmp(v, "both")) c->mode_forward = c->mode_e2e = true;
            else goto bad;
        } else if (!strcmp(a, "--warmup")) {
            if (!strcmp(v, "0")) c->warmup = 0;
            else if (parse_uint(v, 100000, &n)) goto bad;
            else c->warmup = (int)n;
        } else if (!strcmp(a, "--iters")) {
            if (parse_uint(v, 100000, &n)) goto bad;
            c->iters = (int)n;
        } else if (!strcmp(a, "--frame")) {
            if (parse_pair(v, &c->frame_w, &c->frame_h)) goto bad;
        } else if (!strcmp(a, "--input")) {
            if (parse_pair(v, &c->input_h, &c->input_w) || c->input_h % 14 || c->input_w % 14) goto bad;
        } else {
            fprintf(stderr, "da3_bench: unknown option %s\n", a);
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "da3_bench: bad value for %s: '%s'\n", a, v);
        return -1;
    }
    if (!c->model) {
        fprintf(stderr, "da3_bench: --model is required\n");
        return -1;
    }
    return 0;
}

/* Small helpers instead of libm, so the program links with just -lda3. */
static double abs_d(double x) { return x < 0 ? -x : x; }
static int floor_i(double x) {
    int i = (int)x;
    return (double)i > x ? i - 1 : i;
}

/* Deterministic synthetic scene, RGB in [0, 1], seen by a camera shifted by `view`. */
static void scene_pixel(uint32_t x, uint32_t y, uint32_t w, uint32_t h, size_t view, float rgb[3]) {
    double u = ((double)x + 0.5) / w, v = ((double)y + 0.5) / h;
    double shift = 0.04 * (double)view;
    double horizon = 0.42;
    if (v < horizon) { /* sky: blue gradient */
        double t = v / horizon;
        rgb[0] = (float)(0.45 + 0.3 * t);
        rgb[1] = (float)(0.62 + 0.25 * t);
        rgb[2] = (float)(0.92 - 0.1 * t);
    } else { /* ground: perspective checkerboard */
        double depth = 0.08 / (v - horizon + 1e-3);
        double gx = (u - 0.5 + shift) * depth * 6.0, gz = depth * 3.0;
        int check = (floor_i(gx) + floor_i(gz)) & 1;
        double shade = 0.35 + 0.4 * (v - horizon) / (1.0 - horizon);
        rgb[0] = (float)(shade * (check ? 0.75 : 0.45));
        rgb[1] = (float)(shade * (check ? 0.65 : 0.55));
        rgb[2] = (float)(shade * (check ? 0.45 : 0.35));
    }
    for (int b = 0; b < 3; b++) { /* three boxes standing on the ground */
        double cx = 0.25 + 0.25 * b - shift * (1.0 + b), half = 0.06 + 0.02 * b;
        double top = 0.3 + 0.05 * b, bottom = 0.6 + 0.08 * b;
        if (abs_d(u - cx) < half && v > top && v < bottom) {
            double side = (u - cx) / half;
            double light = 0.55 + 0.35 * side;
            rgb[0] = (float)(light * (b == 0 ? 0.9 : 0.4));
            rgb[1] = (float)(light * (b == 1 ? 0.8 : 0.35));
            rgb[2] = (float)(light * (b == 2 ? 0.85 : 0.3));
        }
    }
}

static uint8_t *make_frames(size_t n, uint32_t w, uint32_t h) {
    uint8_t *data = malloc(n * (size_t)w * h * 3);
    if (!data) return NULL;
    for (size_t i = 0; i < n; i++)
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++) {
                float rgb[3];
                scene_pixel(x, y, w, h, i, rgb);
                uint8_t *p = data + ((i * h + y) * (size_t)w + x) * 3;
                for (int c = 0; c < 3; c++) p[c] = (uint8_t)(rgb[c] * 255.0f + 0.5f);
            }
    return data;
}

static float *make_inputs(size_t n, uint32_t h, uint32_t w) {
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    size_t plane = (size_t)h * w;
    float *data = malloc(n * 3 * plane * sizeof *data);
    if (!data) return NULL;
    for (size_t i = 0; i < n; i++)
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++) {
                float rgb[3];
                scene_pixel(x, y, w, h, i, rgb);
                for (int c = 0; c < 3; c++)
                    data[(i * 3 + (size_t)c) * plane + (size_t)y * w + x] = (rgb[c] - mean[c]) / std[c];
            }
    return data;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const char *what) {
    fprintf(stderr, "da3_bench: %s: %s\n", what, da3_last_error_message());
    return 1;
}

/* One configuration: warm-up, timed calls, JSON line. */
static int run_one(const config *c, da3_model *model, bool accelerate, bool forward, size_t views) {
    uint8_t *frames = NULL;
    float *inputs = NULL;
    da3_image *images = NULL;
    if (forward) {
        inputs = make_inputs(views, c->input_h, c->input_w);
        if (!inputs) return fail("out of host memory");
    } else {
        frames = make_frames(views, c->frame_w, c->frame_h);
        images = calloc(views, sizeof *images);
        if (!frames || !images) {
            free(frames);
            free(images);
            return fail("out of host memory");
        }
        for (size_t i = 0; i < views; i++) {
            images[i].data = frames + i * (size_t)c->frame_w * c->frame_h * 3;
            images[i].width = c->frame_w;
            images[i].height = c->frame_h;
            images[i].stride = (size_t)c->frame_w * 3;
            images[i].format = DA3_PIXEL_RGB8;
        }
    }
    bool on_gpu = da3_model_reset_peak_memory(model) == DA3_OK;
    double *times = calloc((size_t)c->iters, sizeof *times);
    int status = times ? 0 : 1;
    for (int i = 0; status == 0 && i < c->warmup + c->iters; i++) {
        da3_result *result = NULL;
        double start = now_ms();
        da3_status s = forward ? da3_infer_preprocessed(model, inputs, views, c->input_h, c->input_w, NULL, &result)
                               : da3_infer(model, images, views, NULL, &result);
        double elapsed = now_ms() - start;
        if (s != DA3_OK) {
            status = fail(forward ? "da3_infer_preprocessed" : "da3_infer");
            break;
        }
        if (!da3_result_depth(result, views - 1)) status = fail("da3_result_depth");
        da3_result_free(result);
        if (i >= c->warmup) times[i - c->warmup] = elapsed;
    }
    if (status == 0) {
        da3_memory_stats mem;
        memset(&mem, 0, sizeof mem);
        mem.struct_size = sizeof mem;
        char peak[32] = "null", reserved[32] = "-";
        if (on_gpu && da3_model_memory_stats(model, &mem) == DA3_OK) {
            snprintf(peak, sizeof peak, "%.1f", (double)mem.peak_allocated_bytes / 1048576.0);
            snprintf(reserved, sizeof reserved, "%.1f", (double)mem.peak_reserved_bytes / 1048576.0);
        }
        qsort(times, (size_t)c->iters, sizeof *times, cmp_double);
        double median = times[c->iters / 2], best = times[0];
        const char *precision = da3_precision_name(da3_model_precision(model));
        printf("{\"impl\":\"libda3\",\"model\":\"%s\",\"views\":%zu,\"precision\":\"%s\",\"accelerate\":%s,"
               "\"mode\":\"%s\",\"median_ms\":%.3f,\"min_ms\":%.3f,\"views_per_s\":%.2f,\"peak_mib\":%s,"
               "\"loaded_mib\":%s,\"device\":\"%s\",\"iters\":%d}\n",
               da3_model_preset(model), views, precision, accelerate ? "true" : "false",
               forward ? "forward" : "e2e", median, best, (double)views / (median / 1e3), peak,
               c->loaded_mib, da3_model_device(model), c->iters);
        fflush(stdout);
        fprintf(stderr, "%-12s %5zu %-5s %-4s %-8s %10.2f %10.2f %10.1f %10s %10s\n", da3_model_preset(model),
                views, precision, accelerate ? "on" : "off", forward ? "forward" : "e2e", median, best,
                (double)views / (median / 1e3), peak, reserved);
    }
    free(times);
    free(frames);
    free(images);
    free(inputs);
    return status;
}

int main(int argc, char **argv) {
    config c;
    if (parse_args(argc, argv, &c)) {
        usage(stderr);
        return 2;
    }
    fprintf(stderr, "%-12s %5s %-5s %-4s %-8s %10s %10s %10s %10s %10s\n", "model", "views", "prec", "acc",
            "mode", "median_ms", "min_ms", "views/s", "peak_MiB", "resv_MiB");
    for (int acc = 0; acc < 2; acc++) {
        if (!c.accelerate[acc]) continue;
        da3_model *model = NULL;
        if (da3_create(c.model, acc == 1, c.precision, &model) != DA3_OK) return fail("da3_create");
        da3_memory_stats loaded;
        memset(&loaded, 0, sizeof loaded);
        loaded.struct_size = sizeof loaded;
        if (da3_model_memory_stats(model, &loaded) == DA3_OK) {
            snprintf(c.loaded_mib, sizeof c.loaded_mib, "%.1f", (double)loaded.allocated_bytes / 1048576.0);
            fprintf(stderr, "loaded (accelerate %s): %s MiB allocated\n", acc == 1 ? "on" : "off", c.loaded_mib);
        } else {
            snprintf(c.loaded_mib, sizeof c.loaded_mib, "null");
        }
        for (int m = 0; m < 2; m++) {
            bool forward = m == 0;
            if ((forward && !c.mode_forward) || (!forward && !c.mode_e2e)) continue;
            for (size_t v = 0; v < c.view_counts; v++) {
                if (run_one(&c, model, acc == 1, forward, c.views[v])) {
                    da3_free(model);
                    return 1;
                }
            }
        }
        da3_free(model);
    }
    return 0;
}
