/*
 * da3_soak -- many host threads on ONE model handle for a while: every result checked against
 * the serial result of the same input, host (and GPU) memory sampled, its flatness judged.
 *
 *   da3_soak --model DIR [--threads 32] [--seconds 60] [--accelerate] [--precision auto]
 *            [--process-res 504] [--inputs 12] [--sample-ms 1000] [--json PATH]
 *            [--images A.png,B.png] [--max-variants 1] [--rel-tol 0]
 *            [--max-rise-mib 32] [--max-slope 1] [--stall-s 120] [--mmap-threshold-kib 128]
 *
 * Inputs: --inputs K distinct scenes made from the two photos (--images, default the two
 * sample photos in assets/images/, paths relative to the working directory): different
 * processing resolutions (--process-res R and neighbours R +- 14, 28), all four resize
 * methods, crops (a sub-rectangle read through the stride), the four pixel formats, 1- and
 * 2-view scenes (also views of different sizes in one scene), and three entry points:
 * pixels (da3_infer, and da3_infer_scenes with the scene twice in one batch), files
 * (da3_infer_files) and preprocessed float planes (da3_infer_preprocessed). The pixels come
 * from the library itself: each photo run once through da3_infer_files at about twice R,
 * its processed image (da3_result_colors) is the source buffer.
 *
 * Phase 1 runs every input once, serially: the reference. Phase 2 starts --threads threads;
 * each first runs every input once (the warm-up), then, for the --seconds of the timed window,
 * they pick inputs at random; the window ends with the drain (each thread finishes its last
 * call). Every output of every result (depth, confidence, sky, cameras, processed colours,
 * sizes) is compared with the reference. A result is a match when it is bit-identical to the
 * reference, or (--max-variants N > 1: several replicas, eager vs CUDA-graph forwards)
 * bit-identical to one of the first N-1 other bit patterns that input produced, or
 * (--rel-tol X > 0) within X of the reference (the largest difference over an output divided
 * by the output's largest magnitude). Differences are always measured and reported (max abs
 * and rel per output).
 *
 * A sampler thread records the resident set size (/proc/self/statm) and, on a GPU, the
 * caching allocator's reserved and allocated bytes summed over the replicas' GPUs
 * (da3_model_replica_memory_stats) every --sample-ms,
 * from the warm-up to the end. Flatness is judged on the second half of the timed window (the
 * warm-up and the first half let per-thread malloc arenas, allocator pools and CUDA graph
 * captures reach their working size; the drain lets memory go): a series is flat when the
 * least-squares line through those samples rises by at most --max-rise-mib MiB over that half
 * or by at most --max-slope MiB per minute (whichever allows more: the first rules short
 * runs, the second long ones). Judged: RSS, and the GPU's reserved bytes; allocated bytes are
 * reported only (a sample lands anywhere inside a forward, so it swings with the
 * activations), as are the idle figures after the load, after the references and at the end.
 * glibc's mmap threshold is fixed (--mmap-threshold-kib) so that freed large blocks go back
 * to the system and RSS follows live memory (see main). The defaults, 32 MiB and 1 MiB/min,
 * leave room for the noise seen on the CPU: 32 threads, da3-small, calls in flight holding
 * decoded photos and activations; bench/results/2026-11-30-soak-cpu.md has the runs.
 *
 * Prints one JSON object (the summary) on stdout, progress on stderr; --json PATH writes the
 * summary with every sample. Exit status: 0 when every call succeeded, every result matched
 * and memory was flat; 1 otherwise (also when no call completed for --stall-s seconds: the
 * summary says "stalled" and the program exits without waiting for the stuck threads);
 * 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "da3.h"

#define MAX_VARIANTS 16
#define MAX_REPLICAS 16

/* ---------------------------------------------------------------- options */

typedef struct {
    const char *model;
    const char *images[2];
    char images_buf[2][1024];
    unsigned threads;
    double seconds;
    bool accelerate;
    da3_precision precision;
    uint32_t process_res;
    unsigned inputs;
    unsigned sample_ms;
    const char *json;
    unsigned max_variants;
    double rel_tol;
    double max_rise_mib, max_slope;
    double stall_s;
    unsigned long mmap_threshold_kib;
} config;

static void usage(FILE *to) {
    fprintf(to,
            "usage: da3_soak --model DIR [--threads 32] [--seconds 60] [--accelerate]\n"
            "                [--precision auto|fp32|fp16|bf16] [--process-res 504] [--inputs 12]\n"
            "                [--sample-ms 1000] [--json PATH] [--images A.png,B.png]\n"
            "                [--max-variants 1] [--rel-tol 0] [--max-rise-mib 32] [--max-slope 1]\n"
            "                [--stall-s 120] [--mmap-threshold-kib 128]\n"
            "  --threads N       host threads calling inference on the one handle\n"
            "  --seconds T       length of the concurrent phase\n"
            "  --inputs K        distinct inputs (sizes, resize methods, crops, formats, 1-2 views)\n"
            "  --max-variants N  bit patterns a result may take per input (1: identical to the\n"
            "                    serial reference; e.g. replicas x 2 for eager and graph forwards)\n"
            "  --rel-tol X       also accept results within X (relative to each output's largest\n"
            "                    magnitude) of the reference (default 0: off)\n"
            "  --max-rise-mib M, --max-slope S  the flatness criterion (see the source's header)\n"
            "  --stall-s S       fail when no call completes for S seconds\n"
            "  --mmap-threshold-kib K  glibc serves blocks of K KiB and more with mmap (0: its own\n"
            "                    dynamic threshold)\n");
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out) {
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= min && v <= max)) return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, config *c) {
    memset(c, 0, sizeof *c);
    c->images[0] = "assets/images/soh_000.png";
    c->images[1] = "assets/images/soh_010.png";
    c->threads = 32;
    c->seconds = 60;
    c->precision = DA3_PRECISION_AUTO;
    c->process_res = 504;
    c->inputs = 12;
    c->sample_ms = 1000;
    c->max_variants = 1;
    c->max_rise_mib = 32;
    c->max_slope = 1;
    c->stall_s = 120;
    c->mmap_threshold_kib = 128;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--accelerate")) {
            c->accelerate = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "da3_soak: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        unsigned long n = 0;
        if (!strcmp(a, "--model")) {
            c->model = v;
        } else if (!strcmp(a, "--threads")) {
            if (parse_uint(v, 1, 4096, &n)) goto bad;
            c->threads = (unsigned)n;
        } else if (!strcmp(a, "--seconds")) {
            if (parse_double(v, 0.1, 1e7, &c->seconds)) goto bad;
        } else if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "auto")) c->precision = DA3_PRECISION_AUTO;
            else if (!strcmp(v, "fp32")) c->precision = DA3_PRECISION_FP32;
            else if (!strcmp(v, "fp16")) c->precision = DA3_PRECISION_FP16;
            else if (!strcmp(v, "bf16")) c->precision = DA3_PRECISION_BF16;
            else goto bad;
        } else if (!strcmp(a, "--process-res")) {
            if (parse_uint(v, 56, 4096, &n)) goto bad;
            c->process_res = (uint32_t)n;
        } else if (!strcmp(a, "--inputs")) {
            if (parse_uint(v, 1, 1024, &n)) goto bad;
            c->inputs = (unsigned)n;
        } else if (!strcmp(a, "--sample-ms")) {
            if (parse_uint(v, 10, 3600000, &n)) goto bad;
            c->sample_ms = (unsigned)n;
        } else if (!strcmp(a, "--json")) {
            c->json = v;
        } else if (!strcmp(a, "--images")) {
            const char *comma = strchr(v, ',');
            size_t first = comma ? (size_t)(comma - v) : 0;
            if (!comma || first == 0 || first >= sizeof c->images_buf[0] || strlen(comma + 1) == 0 ||
                strlen(comma + 1) >= sizeof c->images_buf[1])
                goto bad;
            memcpy(c->images_buf[0], v, first);
            c->images_buf[0][first] = '\0';
            strcpy(c->images_buf[1], comma + 1);
            c->images[0] = c->images_buf[0];
            c->images[1] = c->images_buf[1];
        } else if (!strcmp(a, "--max-variants")) {
            if (parse_uint(v, 1, MAX_VARIANTS, &n)) goto bad;
            c->max_variants = (unsigned)n;
        } else if (!strcmp(a, "--rel-tol")) {
            if (parse_double(v, 0, 1e9, &c->rel_tol)) goto bad;
        } else if (!strcmp(a, "--max-rise-mib")) {
            if (parse_double(v, 0, 1e9, &c->max_rise_mib)) goto bad;
        } else if (!strcmp(a, "--max-slope")) {
            if (parse_double(v, 0, 1e9, &c->max_slope)) goto bad;
        } else if (!strcmp(a, "--mmap-threshold-kib")) {
            if (!strcmp(v, "0")) c->mmap_threshold_kib = 0;
            else if (parse_uint(v, 1, 32768, &c->mmap_threshold_kib)) goto bad;
        } else if (!strcmp(a, "--stall-s")) {
            if (parse_double(v, 1, 1e7, &c->stall_s)) goto bad;
        } else {
            fprintf(stderr, "da3_soak: unknown option %s\n", a);
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "da3_soak: bad value for %s: '%s'\n", a, v);
        return -1;
    }
    if (!c->model) {
        fprintf(stderr, "da3_soak: --model is required\n");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- small helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

/* No libm: the program links with -lda3 and pthreads only. */
static double abs_d(double x) { return x < 0 ? -x : x; }

static const double MIB = 1048576.0;

/* Resident set size in bytes (second field of /proc/self/statm, in pages); 0 if unreadable. */
static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (uint64_t)resident * (uint64_t)page : 0;
}

/* xorshift64*: each thread its own stream. */
static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* FNV-1a, 64 bits: the fingerprint of a result's bit pattern. */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Writes s as a JSON string (quotes, escapes). */
static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* ---------------------------------------------------------------- inputs */

typedef enum { ENTRY_PIXELS, ENTRY_FILES, ENTRY_PREPROCESSED } entry_kind;
static const char *const ENTRY_NAMES[] = {"pixels", "files", "preprocessed"};
static const char *const RESIZE_NAMES[] = {"upper_bound_resize", "lower_bound_resize", "upper_bound_crop",
                                           "lower_bound_crop"};
static const char *const FORMAT_NAMES[] = {"rgb8", "rgba8", "bgr8", "bgra8"};

/* A source photo: RGB8 pixels (the processed image of one da3_infer_files call). */
typedef struct {
    uint8_t *rgb;
    uint32_t width, height;
} photo;

typedef struct {
    char label[160];
    entry_kind entry;
    size_t views;
    da3_options opts;
    /* ENTRY_PIXELS: own buffers (one per view, in the view's format), images into them. */
    uint8_t *pixels[2];
    da3_image images[2];
    /* ENTRY_FILES */
    const char *paths[2];
    /* ENTRY_PREPROCESSED: views x 3 x h x w normalised floats. */
    float *planes;
    uint32_t pre_h, pre_w;

    da3_result *reference;
    uint64_t reference_hash;
    /* Bit patterns seen (variant 0: the reference), under lock. */
    pthread_mutex_t lock;
    uint64_t variant_hash[MAX_VARIANTS];
    unsigned long long variant_results[MAX_VARIANTS];
    size_t variant_count;
    atomic_ullong results, mismatches;
} input;

/* One variant of the input table: views from photos `photo`, sizes relative to R. */
typedef struct {
    entry_kind entry;
    size_t views;
    int photo[2];
    int res_steps; /* process_res = R + 14 * res_steps */
    da3_resize_method method;
    da3_pixel_format format;
    /* Crop of each view, in per-mille of the source: left, top, width, height (0: whole). */
    int crop[2][4];
} variant;

/* The first eight cover every entry point, resize method, pixel format and kind of crop (the
 * short test runs those); the rest add more shapes. */
static const variant VARIANTS[] = {
    {ENTRY_PIXELS, 1, {0, 0}, 0, DA3_RESIZE_UPPER_BOUND_RESIZE, DA3_PIXEL_RGB8, {{0}, {0}}},
    {ENTRY_PIXELS, 2, {1, 0}, -2, DA3_RESIZE_LOWER_BOUND_CROP, DA3_PIXEL_BGRA8,
     {{0, 0, 600, 1000}, {400, 0, 600, 1000}}},
    {ENTRY_FILES, 1, {0, 0}, 0, DA3_RESIZE_UPPER_BOUND_RESIZE, DA3_PIXEL_RGB8, {{0}, {0}}},
    {ENTRY_PREPROCESSED, 1, {1, 1}, 0, DA3_RESIZE_UPPER_BOUND_RESIZE, DA3_PIXEL_RGB8, {{0}, {0}}},
    {ENTRY_PIXELS, 1, {0, 0}, 2, DA3_RESIZE_LOWER_BOUND_RESIZE, DA3_PIXEL_RGBA8, {{0}, {0}}},
    {ENTRY_PIXELS, 1, {1, 1}, 0, DA3_RESIZE_UPPER_BOUND_CROP, DA3_PIXEL_RGB8, {{150, 150, 700, 700}, {0}}},
    {ENTRY_FILES, 2, {0, 1}, -1, DA3_RESIZE_UPPER_BOUND_CROP, DA3_PIXEL_RGB8, {{0}, {0}}},
    {ENTRY_PIXELS, 2, {0, 0}, 1, DA3_RESIZE_UPPER_BOUND_RESIZE, DA3_PIXEL_BGR8, {{0}, {100, 100, 500, 800}}},
    {ENTRY_PIXELS, 1, {1, 1}, 0, DA3_RESIZE_UPPER_BOUND_RESIZE, DA3_PIXEL_BGR8, {{0}, {0}}},
    {ENTRY_PIXELS, 2, {0, 1}, 0, DA3_RESIZE_UPPER_BOUND_RESIZE, DA3_PIXEL_RGB8, {{0}, {0}}},
    {ENTRY_PIXELS, 1, {0, 0}, 0, DA3_RESIZE_UPPER_BOUND_RESIZE, DA3_PIXEL_RGB8, {{0, 250, 1000, 500}, {0}}},
    {ENTRY_PREPROCESSED, 2, {0, 1}, 0, DA3_RESIZE_UPPER_BOUND_RESIZE, DA3_PIXEL_RGB8, {{0}, {0}}},
};
#define VARIANT_COUNT (sizeof VARIANTS / sizeof VARIANTS[0])

static size_t bytes_per_pixel(da3_pixel_format f) { return f == DA3_PIXEL_RGBA8 || f == DA3_PIXEL_BGRA8 ? 4 : 3; }

/* The photo in `format` (whole), for crops read through the stride. */
static uint8_t *convert(const photo *p, da3_pixel_format format) {
    size_t bpp = bytes_per_pixel(format), n = (size_t)p->width * p->height;
    uint8_t *out = malloc(n * bpp);
    if (!out) return NULL;
    bool bgr = format == DA3_PIXEL_BGR8 || format == DA3_PIXEL_BGRA8;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = p->rgb + i * 3;
        uint8_t *d = out + i * bpp;
        d[0] = bgr ? s[2] : s[0];
        d[1] = s[1];
        d[2] = bgr ? s[0] : s[2];
        if (bpp == 4) d[3] = (uint8_t)(255 - (i % 7)); /* alpha is ignored: vary it anyway */
    }
    return out;
}

static uint32_t per_mille(uint32_t size, int pm) { return (uint32_t)((uint64_t)size * (uint64_t)pm / 1000); }

static int make_input(input *in, unsigned index, const config *c, const photo photos[2]) {
    const variant *v = &VARIANTS[index % VARIANT_COUNT];
    /* Later rounds of the table: the next resolutions up, so every input is distinct. */
    int steps = v->res_steps + 3 * (int)(index / VARIANT_COUNT);
    int res = (int)c->process_res + 14 * steps;
    if (res < 28) res = 28;
    memset(in, 0, sizeof *in);
    pthread_mutex_init(&in->lock, NULL);
    in->entry = v->entry;
    in->views = v->views;
    da3_options_default(&in->opts, sizeof in->opts);
    in->opts.process_res = (uint32_t)res;
    in->opts.resize_method = v->method;
    int used = snprintf(in->label, sizeof in->label, "%s %zuv photos %d%s res %d %s", ENTRY_NAMES[v->entry],
                        v->views, v->photo[0], v->views > 1 ? (v->photo[1] ? "+1" : "+0") : "", res,
                        RESIZE_NAMES[v->method]);
    if (v->entry == ENTRY_FILES) {
        for (size_t i = 0; i < v->views; i++) in->paths[i] = c->images[v->photo[i]];
    } else if (v->entry == ENTRY_PIXELS) {
        snprintf(in->label + used, sizeof in->label - (size_t)used, " %s%s", FORMAT_NAMES[v->format],
                 v->crop[0][2] || v->crop[1][2] ? " crop" : "");
        for (size_t i = 0; i < v->views; i++) {
            const photo *p = &photos[v->photo[i]];
            size_t bpp = bytes_per_pixel(v->format);
            in->pixels[i] = convert(p, v->format);
            if (!in->pixels[i]) return -1;
            const int *crop = v->crop[i];
            uint32_t left = 0, top = 0, w = p->width, h = p->height;
            if (crop[2]) {
                left = per_mille(p->width, crop[0]);
                top = per_mille(p->height, crop[1]);
                w = per_mille(p->width, crop[2]);
                h = per_mille(p->height, crop[3]);
            }
            in->images[i].data = in->pixels[i] + ((size_t)top * p->width + left) * bpp;
            in->images[i].width = w;
            in->images[i].height = h;
            in->images[i].stride = (size_t)p->width * bpp;
            in->images[i].format = v->format;
        }
    } else {
        /* A top-left crop of about R x 0.6 R, multiples of 14, normalised as the official. */
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        uint32_t w = (uint32_t)res, h = (uint32_t)res * 3 / 5;
        for (size_t i = 0; i < v->views; i++) {
            if (w > photos[v->photo[i]].width) w = photos[v->photo[i]].width;
            if (h > photos[v->photo[i]].height) h = photos[v->photo[i]].height;
        }
        w -= w % 14;
        h -= h % 14;
        if (w == 0 || h == 0) return -1;
        in->pre_w = w;
        in->pre_h = h;
        snprintf(in->label + used, sizeof in->label - (size_t)used, " %ux%u", (unsigned)h, (unsigned)w);
        size_t plane = (size_t)w * h;
        in->planes = malloc(v->views * 3 * plane * sizeof *in->planes);
        if (!in->planes) return -1;
        for (size_t i = 0; i < v->views; i++) {
            const photo *p = &photos[v->photo[i]];
            for (uint32_t y = 0; y < h; y++)
                for (uint32_t x = 0; x < w; x++)
                    for (int ch = 0; ch < 3; ch++) {
                        float value = (float)p->rgb[((size_t)y * p->width + x) * 3 + (size_t)ch] / 255.0f;
                        in->planes[(i * 3 + (size_t)ch) * plane + (size_t)y * w + x] = (value - mean[ch]) / std[ch];
                    }
        }
    }
    return 0;
}

static void free_input(input *in) {
    for (int i = 0; i < 2; i++) free(in->pixels[i]);
    free(in->planes);
    da3_result_free(in->reference);
    pthread_mutex_destroy(&in->lock);
}

/* ---------------------------------------------------------------- comparing results */

enum { OUT_DEPTH, OUT_CONFIDENCE, OUT_SKY, OUT_EXTRINSICS, OUT_INTRINSICS, OUT_COLORS, OUT_COUNT };
static const char *const OUT_NAMES[] = {"depth", "confidence", "sky", "extrinsics", "intrinsics", "colors"};

typedef struct {
    double abs[OUT_COUNT], rel[OUT_COUNT];
} differences;

static void diff_floats(const float *a, const float *ref, size_t n, double *abs_max, double *rel_max) {
    double biggest = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = ref[i], d = abs_d((double)a[i] - r);
        if (d != d && !(r != r && a[i] != a[i])) d = 1e300; /* one side NaN: as different as can be */
        if (d != d) d = 0;                                   /* both NaN */
        if (abs_d(r) > biggest && r == r) biggest = abs_d(r);
        if (d > worst) worst = d;
    }
    if (worst > *abs_max) *abs_max = worst;
    double rel = biggest > 0 ? worst / biggest : (worst > 0 ? 1e300 : 0);
    if (rel > *rel_max) *rel_max = rel;
}

static void diff_bytes(const uint8_t *a, const uint8_t *ref, size_t n, double *abs_max, double *rel_max) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = abs_d((double)a[i] - (double)ref[i]);
        if (d > worst) worst = d;
    }
    if (worst > *abs_max) *abs_max = worst;
    if (worst / 255.0 > *rel_max) *rel_max = worst / 255.0;
}

/* The outputs of a result, in a fixed order; `count` float or byte arrays. */
typedef struct {
    size_t views;
    uint32_t width, height;
    bool has_conf, has_sky, has_cameras, has_colors;
    const float *depth, *conf, *sky;
    float cameras[2][21]; /* 12 extrinsics + 9 intrinsics per view */
    const uint8_t *colors[2];
} outputs;

static int read_outputs(const da3_result *r, outputs *o) {
    memset(o, 0, sizeof *o);
    o->views = da3_result_view_count(r);
    o->width = da3_result_width(r);
    o->height = da3_result_height(r);
    if (o->views == 0 || o->views > 2) return -1;
    o->depth = da3_result_depth_all(r);
    o->has_conf = da3_result_has_confidence(r);
    o->conf = o->has_conf ? da3_result_confidence_all(r) : NULL;
    o->has_sky = da3_result_has_sky(r);
    o->sky = o->has_sky ? da3_result_sky_all(r) : NULL;
    o->has_cameras = da3_result_has_cameras(r);
    if (!o->depth || (o->has_conf && !o->conf) || (o->has_sky && !o->sky)) return -1;
    for (size_t v = 0; v < o->views; v++) {
        if (o->has_cameras && (da3_result_extrinsics(r, v, o->cameras[v]) != DA3_OK ||
                               da3_result_intrinsics(r, v, o->cameras[v] + 12) != DA3_OK))
            return -1;
        o->colors[v] = da3_result_colors(r, v); /* NULL for preprocessed input: no colours */
    }
    o->has_colors = o->colors[0] != NULL;
    return 0;
}

static uint64_t hash_outputs(const outputs *o) {
    size_t n = o->views * (size_t)o->width * o->height;
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, &o->views, sizeof o->views);
    h = fnv(h, &o->width, sizeof o->width);
    h = fnv(h, &o->height, sizeof o->height);
    h = fnv(h, o->depth, n * sizeof(float));
    if (o->conf) h = fnv(h, o->conf, n * sizeof(float));
    if (o->sky) h = fnv(h, o->sky, n * sizeof(float));
    if (o->has_cameras) h = fnv(h, o->cameras, o->views * sizeof o->cameras[0]);
    for (size_t v = 0; v < o->views && o->has_colors; v++)
        h = fnv(h, o->colors[v], (size_t)o->width * o->height * 3);
    return h;
}

/* 1: same layout as the reference and bit-identical; 0: same layout, values differ (`d`
 * updated); -1: different layout (sizes, outputs present). */
static int compare_outputs(const outputs *got, const outputs *ref, differences *d) {
    if (got->views != ref->views || got->width != ref->width || got->height != ref->height ||
        got->has_conf != ref->has_conf || got->has_sky != ref->has_sky || got->has_cameras != ref->has_cameras ||
        got->has_colors != ref->has_colors)
        return -1;
    size_t n = ref->views * (size_t)ref->width * ref->height, plane = (size_t)ref->width * ref->height * 3;
    bool same = memcmp(got->depth, ref->depth, n * sizeof(float)) == 0 &&
                (!ref->conf || memcmp(got->conf, ref->conf, n * sizeof(float)) == 0) &&
                (!ref->sky || memcmp(got->sky, ref->sky, n * sizeof(float)) == 0) &&
                (!ref->has_cameras || memcmp(got->cameras, ref->cameras, ref->views * sizeof ref->cameras[0]) == 0);
    for (size_t v = 0; same && ref->has_colors && v < ref->views; v++)
        same = memcmp(got->colors[v], ref->colors[v], plane) == 0;
    if (same) return 1;
    diff_floats(got->depth, ref->depth, n, &d->abs[OUT_DEPTH], &d->rel[OUT_DEPTH]);
    if (ref->conf) diff_floats(got->conf, ref->conf, n, &d->abs[OUT_CONFIDENCE], &d->rel[OUT_CONFIDENCE]);
    if (ref->sky) diff_floats(got->sky, ref->sky, n, &d->abs[OUT_SKY], &d->rel[OUT_SKY]);
    for (size_t v = 0; ref->has_cameras && v < ref->views; v++) {
        diff_floats(got->cameras[v], ref->cameras[v], 12, &d->abs[OUT_EXTRINSICS], &d->rel[OUT_EXTRINSICS]);
        diff_floats(got->cameras[v] + 12, ref->cameras[v] + 12, 9, &d->abs[OUT_INTRINSICS], &d->rel[OUT_INTRINSICS]);
    }
    for (size_t v = 0; ref->has_colors && v < ref->views; v++)
        diff_bytes(got->colors[v], ref->colors[v], plane, &d->abs[OUT_COLORS], &d->rel[OUT_COLORS]);
    return 0;
}

/* ---------------------------------------------------------------- shared state */

enum { CALL_INFER, CALL_SCENES, CALL_FILES, CALL_PREPROCESSED, CALL_KINDS };
static const char *const CALL_NAMES[] = {"da3_infer", "da3_infer_scenes", "da3_infer_files", "da3_infer_preprocessed"};

typedef struct {
    double t_s;
    uint64_t rss;
    bool device;
    uint64_t allocated, reserved;
} sample;

static struct {
    const config *cfg;
    da3_model *model;
    input *inputs;
    size_t input_count;
    bool on_gpu;
    double start_s;             /* phase 2 starts: the warm-up pass */
    double timed_s, deadline_s; /* the timed window [timed_s, deadline_s] */
    double end_s;               /* the last thread returned (or the stall was seen) */
    atomic_bool stop;
    /* Warm-up: each thread runs every input once, then waits for `go`. */
    pthread_mutex_t go_lock;
    pthread_cond_t go_cond;
    bool go;
    atomic_uint warmed;
    atomic_ullong calls_at_timed_start, calls_at_deadline;
    atomic_ullong calls[CALL_KINDS];
    atomic_ullong results, identical, variant_matches, tolerance_matches, mismatches, layout_mismatches, errors;
    atomic_uint busy_workers;
    atomic_llong last_completion_us; /* since start_s */
    pthread_mutex_t lock;            /* guards what follows */
    differences worst;
    char first_error[512];
    char first_mismatch[512];
    unsigned long long errors_by_status[16];
    sample *samples;
    size_t sample_count, sample_capacity;
} S;

static void note_error(const char *call, da3_status status, const input *in) {
    atomic_fetch_add(&S.errors, 1);
    pthread_mutex_lock(&S.lock);
    S.errors_by_status[(unsigned)status < 16 ? (unsigned)status : 15]++;
    if (!S.first_error[0])
        snprintf(S.first_error, sizeof S.first_error, "%s on input '%s': %s: %s", call, in->label,
                 da3_status_name((int)status), da3_last_error_message());
    pthread_mutex_unlock(&S.lock);
}

/* Checks one result of input `in` against its reference; frees it. */
static void check_result(input *in, da3_result *r) {
    outputs got, ref;
    atomic_fetch_add(&S.results, 1);
    atomic_fetch_add(&in->results, 1);
    bool matched = false;
    int layout = -1;
    differences d;
    memset(&d, 0, sizeof d);
    if (read_outputs(r, &got) == 0 && read_outputs(in->reference, &ref) == 0) layout = compare_outputs(&got, &ref, &d);
    if (layout == 1) {
        atomic_fetch_add(&S.identical, 1);
        matched = true;
    } else if (layout == 0) {
        uint64_t h = hash_outputs(&got);
        pthread_mutex_lock(&in->lock);
        size_t k = 0;
        while (k < in->variant_count && in->variant_hash[k] != h) k++;
        if (k == in->variant_count && k < MAX_VARIANTS) { /* a new bit pattern */
            in->variant_hash[k] = h;
            in->variant_count++;
        }
        if (k < MAX_VARIANTS) in->variant_results[k]++;
        matched = k < S.cfg->max_variants;
        pthread_mutex_unlock(&in->lock);
        if (matched) atomic_fetch_add(&S.variant_matches, 1);
        if (!matched && S.cfg->rel_tol > 0) {
            double worst = 0;
            for (int o = 0; o < OUT_COUNT; o++)
                if (o != OUT_COLORS && d.rel[o] > worst) worst = d.rel[o];
            matched = worst <= S.cfg->rel_tol && d.rel[OUT_COLORS] == 0;
            if (matched) atomic_fetch_add(&S.tolerance_matches, 1);
        }
        pthread_mutex_lock(&S.lock);
        for (int o = 0; o < OUT_COUNT; o++) {
            if (d.abs[o] > S.worst.abs[o]) S.worst.abs[o] = d.abs[o];
            if (d.rel[o] > S.worst.rel[o]) S.worst.rel[o] = d.rel[o];
        }
        pthread_mutex_unlock(&S.lock);
    } else {
        atomic_fetch_add(&S.layout_mismatches, 1);
    }
    if (!matched) {
        atomic_fetch_add(&S.mismatches, 1);
        atomic_fetch_add(&in->mismatches, 1);
        pthread_mutex_lock(&S.lock);
        if (!S.first_mismatch[0])
            snprintf(S.first_mismatch, sizeof S.first_mismatch,
                     "input '%s': %s (depth max abs diff %.3g, rel %.3g)", in->label,
                     layout < 0 ? "different sizes or outputs" : "values differ from the reference", d.abs[OUT_DEPTH],
                     d.rel[OUT_DEPTH]);
        pthread_mutex_unlock(&S.lock);
    }
    da3_result_free(r);
}

/* Runs input `in` once through `kind`; the result(s) in out[0..*count]. */
static da3_status run_input(const input *in, int kind, da3_result *out[2], size_t *count) {
    *count = 1;
    out[0] = out[1] = NULL;
    switch (kind) {
    case CALL_INFER:
        return da3_infer(S.model, in->images, in->views, &in->opts, &out[0]);
    case CALL_SCENES: {
        da3_scene scenes[2] = {{in->images, in->views}, {in->images, in->views}};
        da3_status statuses[2];
        *count = 2;
        return da3_infer_scenes(S.model, scenes, 2, &in->opts, out, statuses);
    }
    case CALL_FILES:
        return da3_infer_files(S.model, in->paths, in->views, &in->opts, &out[0]);
    default:
        return da3_infer_preprocessed(S.model, in->planes, in->views, in->pre_h, in->pre_w, &in->opts, &out[0]);
    }
}

static int primary_call(const input *in) {
    return in->entry == ENTRY_FILES ? CALL_FILES : in->entry == ENTRY_PREPROCESSED ? CALL_PREPROCESSED : CALL_INFER;
}

static unsigned long long total_calls(void) {
    unsigned long long calls = 0;
    for (int k = 0; k < CALL_KINDS; k++) calls += atomic_load(&S.calls[k]);
    return calls;
}

/* One call on input `in` (through `kind`), every result checked. */
static void call_and_check(input *in, int kind) {
    da3_result *out[2];
    size_t count = 0;
    da3_status status = run_input(in, kind, out, &count);
    atomic_fetch_add(&S.calls[kind], 1);
    if (status != DA3_OK) note_error(CALL_NAMES[kind], status, in);
    for (size_t i = 0; i < count; i++)
        if (out[i]) check_result(in, out[i]);
        else if (status == DA3_OK) note_error(CALL_NAMES[kind], DA3_ERR_PANIC, in); /* OK without a result */
    atomic_store(&S.last_completion_us, (long long)((now_s() - S.start_s) * 1e6));
}

/* Whether no call has completed for `limit_s` seconds. */
static bool stalling(double limit_s) {
    return now_s() - S.start_s - (double)atomic_load(&S.last_completion_us) / 1e6 > limit_s;
}

static void *worker(void *arg) {
    uint64_t rng = 0x9E3779B97F4A7C15ULL * ((uint64_t)(uintptr_t)arg + 1);
    /* Warm-up: every input once, from a different first one per thread, so each thread's
     * allocations (malloc arenas, libtorch's per-thread state) reach their working size before
     * the window whose memory is judged. */
    size_t first = (size_t)(uintptr_t)arg % S.input_count;
    for (size_t i = 0; i < S.input_count && !atomic_load(&S.stop); i++)
        call_and_check(&S.inputs[(first + i) % S.input_count], primary_call(&S.inputs[(first + i) % S.input_count]));
    atomic_fetch_add(&S.warmed, 1);
    pthread_mutex_lock(&S.go_lock);
    while (!S.go) pthread_cond_wait(&S.go_cond, &S.go_lock);
    pthread_mutex_unlock(&S.go_lock);
    while (!atomic_load(&S.stop) && now_s() < S.deadline_s) {
        input *in = &S.inputs[next_random(&rng) % S.input_count];
        int kind = primary_call(in);
        /* One pixel call in five goes through the batch entry, the scene twice. */
        if (kind == CALL_INFER && next_random(&rng) % 5 == 0) kind = CALL_SCENES;
        call_and_check(in, kind);
    }
    atomic_fetch_sub(&S.busy_workers, 1);
    return NULL;
}

/* Memory now (t_s: since phase 2 started). */
static sample measure(void) {
    sample s;
    memset(&s, 0, sizeof s);
    s.t_s = S.start_s > 0 ? now_s() - S.start_s : 0;
    s.rss = rss_bytes();
    if (S.on_gpu) {
        /* Summed over the replicas' GPUs, each device once (two replicas may share one). */
        size_t replicas = da3_model_replica_count(S.model);
        for (size_t i = 0; i < replicas; i++) {
            const char *device = da3_model_replica_device(S.model, i);
            bool seen = false;
            for (size_t j = 0; j < i && device; j++) {
                const char *other = da3_model_replica_device(S.model, j);
                if (other && strcmp(other, device) == 0) seen = true;
            }
            if (seen) continue;
            da3_memory_stats m;
            memset(&m, 0, sizeof m);
            m.struct_size = sizeof m;
            if (da3_model_replica_memory_stats(S.model, i, &m) == DA3_OK) {
                s.device = true;
                s.allocated += m.allocated_bytes;
                s.reserved += m.reserved_bytes;
            }
        }
    }
    return s;
}

static void take_sample(void) {
    sample s = measure();
    pthread_mutex_lock(&S.lock);
    if (S.sample_count == S.sample_capacity) {
        size_t capacity = S.sample_capacity ? 2 * S.sample_capacity : 256;
        sample *grown = realloc(S.samples, capacity * sizeof *grown);
        if (grown) {
            S.samples = grown;
            S.sample_capacity = capacity;
        }
    }
    if (S.sample_count < S.sample_capacity) S.samples[S.sample_count++] = s;
    pthread_mutex_unlock(&S.lock);
}

static void *sampler(void *arg) {
    (void)arg;
    double period = S.cfg->sample_ms / 1e3, next = S.start_s, last_report = S.start_s;
    while (!atomic_load(&S.stop)) {
        take_sample();
        next += period;
        double now = now_s();
        if (now - last_report >= 10) { /* a progress line every 10 s */
            last_report = now;
            fprintf(stderr, "da3_soak: %6.0f s  calls %llu  mismatches %llu  errors %llu  rss %.1f MiB\n",
                    now - S.start_s, total_calls(), (unsigned long long)atomic_load(&S.mismatches),
                    (unsigned long long)atomic_load(&S.errors), (double)rss_bytes() / MIB);
        }
        sleep_s(next - now_s());
    }
    return NULL;
}

/* ---------------------------------------------------------------- flatness */

typedef struct {
    bool present;
    double first, last, max, min_second_half, slope_per_min, fitted_rise, half_minutes;
    size_t second_half_samples;
    bool flat;
} series_stats;

/* Series `which` (0 RSS, 1 device reserved, 2 device allocated) of the samples, in MiB. */
static double value_of(const sample *s, int which) {
    return (double)(which == 0 ? s->rss : which == 1 ? s->reserved : s->allocated) / MIB;
}

/* Statistics of series `which` over the timed window (samples of the warm-up before it and of
 * the drain after it, while the threads finish their last calls, are kept in the samples but
 * not judged); the fit over the window's second half. */
static series_stats judge(int which) {
    series_stats r;
    memset(&r, 0, sizeof r);
    size_t n = S.sample_count;
    if (n == 0 || (which > 0 && !S.samples[0].device)) return r;
    double from = S.timed_s - S.start_s, to = S.deadline_s - S.start_s, half = (from + to) / 2;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const sample *s = &S.samples[i];
        if (s->t_s < from || s->t_s > to) continue;
        double y = value_of(s, which);
        if (!r.present) r.first = r.max = r.min_second_half = y;
        r.present = true;
        r.last = y;
        if (y > r.max) r.max = y;
        if (s->t_s < half) continue;
        double x = s->t_s / 60.0;
        sx += x, sy += y, sxx += x * x, sxy += x * y;
        if (m == 0 || y < r.min_second_half) r.min_second_half = y;
        m++;
    }
    r.second_half_samples = m;
    r.half_minutes = (to - half) / 60.0;
    double denominator = (double)m * sxx - sx * sx;
    if (m >= 3 && denominator > 0) r.slope_per_min = ((double)m * sxy - sx * sy) / denominator;
    r.fitted_rise = r.slope_per_min * r.half_minutes;
    /* Fewer than 3 samples in the second half cannot show a trend: not judged flat. */
    r.flat = m >= 3 && (r.fitted_rise <= S.cfg->max_rise_mib || r.slope_per_min <= S.cfg->max_slope);
    return r;
}

static void json_series(FILE *f, const char *name, const series_stats *s, bool judged) {
    fprintf(f, ",\"%s\":", name);
    if (!s->present) {
        fputs("null", f);
        return;
    }
    fprintf(f,
            "{\"first\":%.2f,\"last\":%.2f,\"max\":%.2f,\"min_second_half\":%.2f,\"slope_mib_per_min\":%.3f,"
            "\"fitted_rise_second_half\":%.2f,\"second_half_samples\":%zu",
            s->first, s->last, s->max, s->min_second_half, s->slope_per_min, s->fitted_rise, s->second_half_samples);
    if (judged) fprintf(f, ",\"flat\":%s", s->flat ? "true" : "false");
    fputc('}', f);
}

/* ---------------------------------------------------------------- main */

/* The processed image of photo `path` at `res` (upper_bound_resize): the source pixels. */
static int load_photo(const char *path, uint32_t res, photo *p) {
    da3_options o;
    da3_options_default(&o, sizeof o);
    o.process_res = res;
    da3_result *r = NULL;
    if (da3_infer_files(S.model, &path, 1, &o, &r) != DA3_OK) {
        fprintf(stderr, "da3_soak: reading %s: %s\n", path, da3_last_error_message());
        return -1;
    }
    p->width = da3_result_width(r);
    p->height = da3_result_height(r);
    const uint8_t *colors = da3_result_colors(r, 0);
    p->rgb = colors ? malloc((size_t)p->width * p->height * 3) : NULL;
    if (p->rgb) memcpy(p->rgb, colors, (size_t)p->width * p->height * 3);
    da3_result_free(r);
    return p->rgb ? 0 : -1;
}

/* "name":{"rss":..,"device_reserved":..,"device_allocated":..} in MiB (device: null on the CPU). */
static void json_point(FILE *f, const char *name, const sample *s) {
    fprintf(f, ",\"%s\":{\"rss\":%.2f,", name, (double)s->rss / MIB);
    if (s->device)
        fprintf(f, "\"device_reserved\":%.2f,\"device_allocated\":%.2f}", (double)s->reserved / MIB,
                (double)s->allocated / MIB);
    else
        fputs("\"device_reserved\":null,\"device_allocated\":null}", f);
}

static void write_summary(FILE *f, const sample *after_load, const sample *after_reference, bool stalled,
                          bool with_samples, const series_stats st[3], bool flat, bool pass) {
    const config *c = S.cfg;
    unsigned long long calls = total_calls();
    unsigned long long timed_calls = atomic_load(&S.calls_at_deadline) - atomic_load(&S.calls_at_timed_start);
    double timed = S.deadline_s - S.timed_s;
    size_t replicas = da3_model_replica_count(S.model);
    fputs("{\"program\":\"da3_soak\",\"model\":", f);
    json_string(f, da3_model_preset(S.model));
    fputs(",\"device\":", f);
    json_string(f, da3_model_device(S.model));
    fprintf(f, ",\"replicas\":%zu,\"replica_devices\":[", replicas);
    for (size_t i = 0; i < replicas && i < MAX_REPLICAS; i++) {
        if (i) fputc(',', f);
        json_string(f, da3_model_replica_device(S.model, i));
    }
    fprintf(f, "],\"precision\":\"%s\",\"accelerate\":%s,\"threads\":%u,\"seconds\":%.1f,\"process_res\":%u,"
               "\"sample_ms\":%u,\"warmup_s\":%.2f,\"timed_s\":%.2f,\"drain_s\":%.2f,\"inputs\":[",
            da3_precision_name(da3_model_precision(S.model)), c->accelerate ? "true" : "false", c->threads, c->seconds,
            (unsigned)c->process_res, c->sample_ms, S.timed_s - S.start_s, timed, S.end_s - S.deadline_s);
    for (size_t i = 0; i < S.input_count; i++) {
        input *in = &S.inputs[i];
        if (i) fputc(',', f);
        fputs("{\"label\":", f);
        json_string(f, in->label);
        fprintf(f, ",\"width\":%u,\"height\":%u,\"results\":%llu,\"mismatches\":%llu,\"variants\":%zu}",
                da3_result_width(in->reference), da3_result_height(in->reference),
                (unsigned long long)atomic_load(&in->results), (unsigned long long)atomic_load(&in->mismatches),
                in->variant_count);
    }
    fprintf(f, "],\"calls\":%llu,\"timed_calls\":%llu,\"calls_per_s\":%.2f,\"calls_by_entry\":{", calls,
            timed_calls, timed > 0 ? (double)timed_calls / timed : 0.0);
    for (int k = 0; k < CALL_KINDS; k++)
        fprintf(f, "%s\"%s\":%llu", k ? "," : "", CALL_NAMES[k], (unsigned long long)atomic_load(&S.calls[k]));
    size_t variants_max = 0;
    for (size_t i = 0; i < S.input_count; i++)
        if (S.inputs[i].variant_count > variants_max) variants_max = S.inputs[i].variant_count;
    fprintf(f,
            "},\"results_checked\":%llu,\"identical\":%llu,\"variant_matches\":%llu,\"tolerance_matches\":%llu,"
            "\"mismatches\":%llu,\"layout_mismatches\":%llu,\"errors\":%llu,\"max_variants_allowed\":%u,"
            "\"rel_tol\":%g,\"variants_max\":%zu,\"first_mismatch\":",
            (unsigned long long)atomic_load(&S.results), (unsigned long long)atomic_load(&S.identical),
            (unsigned long long)atomic_load(&S.variant_matches), (unsigned long long)atomic_load(&S.tolerance_matches),
            (unsigned long long)atomic_load(&S.mismatches), (unsigned long long)atomic_load(&S.layout_mismatches),
            (unsigned long long)atomic_load(&S.errors), c->max_variants, c->rel_tol, variants_max);
    if (S.first_mismatch[0]) json_string(f, S.first_mismatch);
    else fputs("null", f);
    fputs(",\"first_error\":", f);
    if (S.first_error[0]) json_string(f, S.first_error);
    else fputs("null", f);
    fputs(",\"errors_by_status\":{", f);
    for (int k = 0, n = 0; k < 16; k++)
        if (S.errors_by_status[k]) fprintf(f, "%s\"%s\":%llu", n++ ? "," : "", da3_status_name(k), S.errors_by_status[k]);
    fputs("},\"max_abs_diff\":{", f);
    for (int o = 0; o < OUT_COUNT; o++) fprintf(f, "%s\"%s\":%.6g", o ? "," : "", OUT_NAMES[o], S.worst.abs[o]);
    fputs("},\"max_rel_diff\":{", f);
    for (int o = 0; o < OUT_COUNT; o++) fprintf(f, "%s\"%s\":%.6g", o ? "," : "", OUT_NAMES[o], S.worst.rel[o]);
    fputc('}', f);
    /* Idle moments (no call running): after the load, after the references, after the drain. */
    json_point(f, "idle_after_load_mib", after_load);
    json_point(f, "idle_after_reference_mib", after_reference);
    if (S.sample_count) json_point(f, "idle_end_mib", &S.samples[S.sample_count - 1]);
    json_series(f, "rss_mib", &st[0], true);
    json_series(f, "device_reserved_mib", &st[1], true);
    json_series(f, "device_allocated_mib", &st[2], false);
    fprintf(f,
            ",\"criterion\":\"memory flat: over the second half of the timed window the least-squares line of "
            "RSS (and of GPU reserved bytes) rises by <= %g MiB or by <= %g MiB/min; results: bit-identical to the "
            "serial reference",
            c->max_rise_mib, c->max_slope);
    if (c->max_variants > 1) fprintf(f, " or to one of the first %u other bit patterns per input", c->max_variants - 1);
    if (c->rel_tol > 0) fprintf(f, " or within a relative difference of %g", c->rel_tol);
    fputc('"', f);
    fprintf(f, ",\"stalled\":%s,\"flat\":%s,\"verdict\":\"%s\"", stalled ? "true" : "false", flat ? "true" : "false",
            pass ? "pass" : "fail");
    if (with_samples) {
        fputs(",\"samples\":[", f);
        for (size_t i = 0; i < S.sample_count; i++) {
            const sample *s = &S.samples[i];
            fprintf(f, "%s[%.3f,%.2f", i ? "," : "", s->t_s, (double)s->rss / MIB);
            if (s->device) fprintf(f, ",%.2f,%.2f", (double)s->reserved / MIB, (double)s->allocated / MIB);
            fputc(']', f);
        }
        fputs("],\"sample_columns\":[\"t_s\",\"rss_mib\",\"device_reserved_mib\",\"device_allocated_mib\"]", f);
    }
    fputs("}\n", f);
}

int main(int argc, char **argv) {
    config c;
    if (parse_args(argc, argv, &c)) {
        usage(stderr);
        return 2;
    }
    S.cfg = &c;
    /* A fixed mmap threshold (glibc): large blocks (activations, decoded photos) go back to the
     * system when freed, so RSS follows live memory. With glibc's dynamic threshold, freed large
     * blocks raise it and later ones stay in the per-thread arenas, whose retained memory grew in
     * steps for minutes in a leak-free 32-thread run (RSS +35 MiB between minutes 5 and 7 of 10,
     * while one thread's RSS stayed flat). */
    if (c.mmap_threshold_kib && !mallopt(M_MMAP_THRESHOLD, (int)(c.mmap_threshold_kib * 1024)))
        fprintf(stderr, "da3_soak: mallopt(M_MMAP_THRESHOLD) refused (not glibc's allocator, e.g. under "
                        "ASan): RSS keeps the allocator's retention noise\n");
    pthread_mutex_init(&S.lock, NULL);
    pthread_mutex_init(&S.go_lock, NULL);
    pthread_cond_init(&S.go_cond, NULL);
    if (da3_create(c.model, c.accelerate, c.precision, &S.model) != DA3_OK) {
        fprintf(stderr, "da3_soak: da3_create: %s\n", da3_last_error_message());
        return 1;
    }
    {
        da3_memory_stats m;
        memset(&m, 0, sizeof m);
        m.struct_size = sizeof m;
        S.on_gpu = da3_model_memory_stats(S.model, &m) == DA3_OK;
    }
    sample after_load = measure();
    fprintf(stderr, "da3_soak: %s on %s (%zu replica(s)), %s, accelerate %s\n", da3_model_preset(S.model),
            da3_model_device(S.model), da3_model_replica_count(S.model),
            da3_precision_name(da3_model_precision(S.model)), c.accelerate ? "on" : "off");

    /* Phase 1: the source pixels, the inputs, and each input's reference, one call at a time. */
    photo photos[2];
    memset(photos, 0, sizeof photos);
    uint32_t source_res = c.process_res * 2 > 1204 ? 1204 : c.process_res * 2;
    if (source_res < c.process_res + 56) source_res = c.process_res + 56;
    int status = 0;
    for (int i = 0; i < 2 && status == 0; i++) status = load_photo(c.images[i], source_res, &photos[i]);
    S.input_count = c.inputs;
    S.inputs = calloc(S.input_count, sizeof *S.inputs);
    if (!S.inputs) status = -1;
    size_t made = 0;
    for (; status == 0 && made < S.input_count; made++) {
        input *in = &S.inputs[made];
        if (make_input(in, (unsigned)made, &c, photos)) {
            fprintf(stderr, "da3_soak: cannot build input %zu\n", made);
            status = -1;
            made++;
            break;
        }
        da3_result *out[2];
        size_t count = 0;
        double t0 = now_s();
        da3_status s = run_input(in, primary_call(in), out, &count);
        if (s != DA3_OK) {
            fprintf(stderr, "da3_soak: reference of '%s': %s: %s\n", in->label, da3_status_name((int)s),
                    da3_last_error_message());
            status = -1;
            made++;
            break;
        }
        in->reference = out[0];
        outputs o;
        if (read_outputs(in->reference, &o)) {
            fprintf(stderr, "da3_soak: reference of '%s' lacks an output: %s\n", in->label, da3_last_error_message());
            status = -1;
            made++;
            break;
        }
        in->reference_hash = hash_outputs(&o);
        in->variant_hash[0] = in->reference_hash;
        in->variant_count = 1;
        fprintf(stderr, "da3_soak: input %2zu: %-70s -> %ux%u, %.0f ms\n", made, in->label, (unsigned)o.width,
                (unsigned)o.height, (now_s() - t0) * 1e3);
    }
    for (int i = 0; i < 2; i++) free(photos[i].rgb);
    sample after_reference = measure();

    bool stalled = false;
    if (status == 0) {
        /* Phase 2: the threads and the sampler. */
        pthread_t *threads = calloc(c.threads, sizeof *threads), sampler_thread;
        if (!threads) {
            fprintf(stderr, "da3_soak: out of memory\n");
            return 1;
        }
        S.start_s = now_s();
        atomic_store(&S.busy_workers, c.threads);
        if (pthread_create(&sampler_thread, NULL, sampler, NULL)) return 1;
        unsigned started = 0;
        for (; started < c.threads; started++)
            if (pthread_create(&threads[started], NULL, worker, (void *)(uintptr_t)started)) break;
        if (started < c.threads) {
            fprintf(stderr, "da3_soak: started only %u threads\n", started);
            atomic_fetch_sub(&S.busy_workers, c.threads - started);
            status = -1;
        }
        /* The warm-up: until every thread has run every input once. */
        while (atomic_load(&S.warmed) < started && !(stalled = stalling(c.stall_s))) sleep_s(0.05);
        pthread_mutex_lock(&S.go_lock);
        S.timed_s = now_s();
        S.deadline_s = S.timed_s + (stalled ? 0 : c.seconds);
        atomic_store(&S.calls_at_timed_start, total_calls());
        S.go = true;
        pthread_cond_broadcast(&S.go_cond);
        pthread_mutex_unlock(&S.go_lock);
        fprintf(stderr, "da3_soak: warm-up (every thread every input once) took %.1f s; %g s timed window\n",
                S.timed_s - S.start_s, c.seconds);
        /* The timed window, then the drain: the threads finish their last calls. A call that
         * never returns (no completion for --stall-s) is a stall. */
        bool past_deadline = false;
        while (!stalled && atomic_load(&S.busy_workers) > 0) {
            sleep_s(0.05);
            if (!past_deadline && now_s() >= S.deadline_s) {
                past_deadline = true;
                atomic_store(&S.calls_at_deadline, total_calls());
            }
            stalled = stalling(c.stall_s);
        }
        if (!past_deadline) atomic_store(&S.calls_at_deadline, total_calls());
        S.end_s = now_s();
        atomic_store(&S.stop, true);
        pthread_join(sampler_thread, NULL);
        take_sample(); /* idle: after the last call */
        if (!stalled)
            for (unsigned i = 0; i < started; i++) pthread_join(threads[i], NULL);
        free(threads);
    }

    series_stats st[3];
    for (int w = 0; w < 3; w++) st[w] = judge(w);
    bool flat = st[0].present && st[0].flat && (!st[1].present || st[1].flat);
    bool pass = status == 0 && !stalled && flat && atomic_load(&S.mismatches) == 0 && atomic_load(&S.errors) == 0 &&
                atomic_load(&S.results) > 0;
    if (S.start_s > 0) {
        write_summary(stdout, &after_load, &after_reference, stalled, false, st, flat, pass);
        fflush(stdout);
        if (c.json) {
            FILE *f = fopen(c.json, "w");
            if (!f) {
                fprintf(stderr, "da3_soak: cannot write %s\n", c.json);
                pass = false;
            } else {
                write_summary(f, &after_load, &after_reference, stalled, true, st, flat, pass);
                fclose(f);
            }
        }
        fprintf(stderr, "da3_soak: %s\n", pass ? "pass" : "FAIL");
    }
    if (stalled) {
        fflush(stderr);
        _exit(1); /* threads are stuck inside libda3: do not wait for them or free the model */
    }
    for (size_t i = 0; i < made; i++) free_input(&S.inputs[i]);
    free(S.inputs);
    free(S.samples);
    da3_free(S.model);
    return pass ? 0 : 1;
}
