/*
 * da3_infer -- run Depth Anything 3 on image files through libda3's C API.
 *
 *   da3_infer --model M [--precision auto|fp32|fp16|bf16] [--accelerate] [--res N]
 *             [--resize-method NAME] [--ref-view NAME] [--out DIR] [--png] [--repeat N]
 *             [--ray-pose] [--extrinsics FILE.npy --intrinsics FILE.npy] [--no-align-scale]
 *             [--export-layers L1,L2,...]
 *             [--ply] [--glb] [--colmap] [--png16] [--pfm] [--points] [--at-input]
 *             [--conf-percentile P] [--drop-sky] [--input-pixels]
 *             image1 [image2 ...]
 *
 * All images form one scene (one view each). Prints the model's capabilities, the processed
 * size, the device, the wall time of the inference call and, per view, depth min/mean/max and
 * the cameras; writes depth.npy (N,H,W), conf.npy (N,H,W), extrinsics.npy (N,3,4),
 * intrinsics.npy (N,3,3), sky.npy (N,H,W), scale_factor.npy (1,) (nested model),
 * alignment_scale.npy (1,) (with known cameras) and features_<layer>.npy (N,h,w,C) (with
 * --export-layers), each when the result has it, as little-endian float32 NumPy files into
 * DIR (default "out"), and with --png a colour-mapped depth_<i>.png per view.
 *
 * Geometry and export (models with cameras for the point clouds): --ply writes scene.ply
 * (binary PLY: x y z, red green blue, confidence), --glb scene.glb (points and camera frusta,
 * laid out as the official GLB export), --colmap a COLMAP text model in DIR/colmap (cameras
 * in input pixels with --input-pixels), --png16 depth16_<i>.png (16-bit, full range; the scale
 * is printed), --pfm depth_<i>.pfm, --points points.npy (N,H,W,3: world-space point of every
 * pixel), --at-input depth_input_<i>.npy (depth resampled bilinearly to each image's size,
 * NaN where a crop removed pixels) and intrinsics_input.npy (N,3,3, input pixels). The point
 * clouds keep pixels at or above the P-th percentile of confidence (--conf-percentile,
 * default 0: all) and leave out sky with --drop-sky.
 *
 * Known cameras: --extrinsics reads world-to-camera matrices, shape (N,4,4) or (N,3,4), and
 * --intrinsics (N,3,3) in the pixels of the input images, from .npy files (float32 or
 * float64, little-endian, C order; N = the number of images). The prediction is aligned to
 * them; --no-align-scale keeps the predicted depth scale (official align_to_input_ext_scale
 * False).
 *
 * Exit status: 0 on success, 1 when libda3 reports an error (its message is printed),
 * 2 on a usage error. Build: see Makefile in this directory.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "da3.h"
#include "npy_read.h"

static const char *const RESIZE_NAMES[] = {
    "upper_bound_resize", "lower_bound_resize", "upper_bound_crop", "lower_bound_crop"};
static const da3_resize_method RESIZE_VALUES[] = {
    DA3_RESIZE_UPPER_BOUND_RESIZE, DA3_RESIZE_LOWER_BOUND_RESIZE, DA3_RESIZE_UPPER_BOUND_CROP,
    DA3_RESIZE_LOWER_BOUND_CROP};
static const char *const REF_VIEW_NAMES[] = {"saddle_balanced", "first", "middle",
                                             "saddle_sim_range"};
static const da3_ref_view_strategy REF_VIEW_VALUES[] = {
    DA3_REF_VIEW_SADDLE_BALANCED, DA3_REF_VIEW_FIRST, DA3_REF_VIEW_MIDDLE,
    DA3_REF_VIEW_SADDLE_SIM_RANGE};
static const char *const PRECISION_NAMES[] = {"auto", "fp32", "fp16", "bf16"};
static const da3_precision PRECISION_VALUES[] = {DA3_PRECISION_AUTO, DA3_PRECISION_FP32,
                                                 DA3_PRECISION_FP16, DA3_PRECISION_BF16};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void usage(FILE *to) {
    fprintf(to,
            "usage: da3_infer --model M [--precision auto|fp32|fp16|bf16] [--accelerate]\n"
            "                 [--res N] [--resize-method NAME] [--ref-view NAME]\n"
            "                 [--out DIR] [--png] [--repeat N] [--ray-pose]\n"
            "                 [--extrinsics F.npy --intrinsics F.npy] [--no-align-scale]\n"
            "                 [--export-layers L1,L2,...]\n"
            "                 [--ply] [--glb] [--colmap] [--png16] [--pfm] [--points]\n"
            "                 [--at-input] [--conf-percentile P] [--drop-sky] [--input-pixels]\n"
            "                 image1 [image2 ...]\n"
            "\n"
            "  --model M          checkpoint directory or Hugging Face repo id (local cache)\n"
            "  --precision P      arithmetic (default auto)\n"
            "  --accelerate       use the fast runner\n"
            "  --res N            processing resolution (default 504)\n"
            "  --resize-method    upper_bound_resize (default), lower_bound_resize,\n"
            "                     upper_bound_crop, lower_bound_crop\n"
            "  --ref-view         saddle_balanced (default), first, middle, saddle_sim_range\n"
            "  --out DIR          output directory for .npy files (default out)\n"
            "  --png              also write a colour-mapped depth_<i>.png per view\n"
            "  --repeat N         run the inference N times and report first/last/best time\n"
            "  --ray-pose         camera pose from the ray branch (any-view models)\n"
            "  --extrinsics F     known world-to-camera matrices, .npy (N,4,4) or (N,3,4)\n"
            "  --intrinsics F     known intrinsics in input-image pixels, .npy (N,3,3)\n"
            "  --no-align-scale   with known cameras, keep the predicted depth scale\n"
            "  --export-layers L  backbone blocks whose features to write, e.g. 3,7\n"
            "  --ply, --glb       point cloud of all views: scene.ply, scene.glb (with cameras)\n"
            "  --colmap           COLMAP text model in DIR/colmap\n"
            "  --png16, --pfm     depth16_<i>.png (16-bit), depth_<i>.pfm per view\n"
            "  --points           points.npy (N,H,W,3), world-space point of every pixel\n"
            "  --at-input         depth_input_<i>.npy and intrinsics_input.npy at input size\n"
            "  --conf-percentile P  point clouds: drop pixels below this confidence percentile\n"
            "  --drop-sky         point clouds: drop sky pixels (models with a sky map)\n"
            "  --input-pixels     COLMAP cameras and 2D points in input-image pixels\n");
}

/* Index of `name` in `names`, or -1. */
static int lookup(const char *name, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, names[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int fail(const char *what, da3_status status) {
    fprintf(stderr, "da3_infer: %s failed (%s): %s\n", what, da3_status_name((int)status),
            da3_last_error_message());
    return 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* mkdir -p: creates `dir` and its missing parents. Returns 0 on success. */
static int make_dirs(const char *dir) {
    size_t len = strlen(dir);
    char *path = malloc(len + 1);
    if (path == NULL) {
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            char saved = path[i];
            path[i] = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                free(path);
                return -1;
            }
            path[i] = saved;
        }
    }
    free(path);
    return 0;
}

/* Joins `dir` and `name` into a new string (caller frees). */
static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p != NULL) {
        snprintf(p, n, "%s/%s", dir, name);
    }
    return p;
}

/*
 * Writes `count` floats shaped `shape[0..ndim]` as a NumPy .npy v1.0 file: magic, version,
 * little-endian header length, a dict literal padded with spaces so that the data starts at a
 * multiple of 64 bytes, a newline, then little-endian float32 data.
 */
static int write_npy(const char *path, const float *data, const size_t *shape, int ndim) {
    char dims[128];
    size_t used = 0, count = 1;
    for (int i = 0; i < ndim && used < sizeof dims; i++) {
        used += (size_t)snprintf(dims + used, sizeof dims - used, i ? ", %zu" : "%zu", shape[i]);
        count *= shape[i];
    }
    if (ndim == 1 && used + 1 < sizeof dims) {
        dims[used++] = ','; /* a 1-tuple is written "(N,)" */
        dims[used] = '\0';
    }
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                     dims);
    if (n < 0 || (size_t)n >= sizeof dict) {
        return -1;
    }
    size_t unpadded = 10 + (size_t)n + 1; /* magic(6) + version(2) + len(2) + dict + '\n' */
    size_t pad = (64 - unpadded % 64) % 64;
    size_t header_len = (size_t)n + pad + 1;

    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                  (unsigned char)(header_len & 0xff),
                                  (unsigned char)(header_len >> 8)};
    int ok = fwrite(preamble, 1, sizeof preamble, f) == sizeof preamble &&
             fwrite(dict, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++) {
        ok = fputc(' ', f) != EOF;
    }
    ok = ok && fputc('\n', f) != EOF;
    for (size_t i = 0; ok && i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &data[i], sizeof bits);
        unsigned char le[4] = {(unsigned char)(bits & 0xff), (unsigned char)((bits >> 8) & 0xff),
                               (unsigned char)((bits >> 16) & 0xff),
                               (unsigned char)((bits >> 24) & 0xff)};
        ok = fwrite(le, 1, 4, f) == 4;
    }
    if (fclose(f) != 0) {
        ok = 0;
    }
    return ok ? 0 : -1;
}

static int save_npy(const char *dir, const char *name, const float *data, const size_t *shape,
                    int ndim) {
    char *path = join(dir, name);
    if (path == NULL || write_npy(path, data, shape, ndim) != 0) {
        fprintf(stderr, "da3_infer: cannot write %s/%s: %s\n", dir, name, strerror(errno));
        free(path);
        return -1;
    }
    printf("wrote %s\n", path);
    free(path);
    return 0;
}

/* Reads a NumPy .npy file as float32 (see npy_read.h); prints why on failure. */
static float *read_npy(const char *path, size_t *shape, int *ndim, int max_dims) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "da3_infer: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    const char *why = NULL;
    float *values = npy_read(f, shape, ndim, max_dims, &why);
    if (values == NULL) {
        fprintf(stderr, "da3_infer: cannot read %s: %s\n", path, why);
    }
    fclose(f);
    return values;
}

/* Parses "3,7,11" into layers[0..*count] (at most max). Returns 0 on success. */
static int parse_layers(const char *text, uint32_t *layers, uint32_t *count, uint32_t max) {
    *count = 0;
    const char *p = text;
    while (*p != '\0') {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (errno != 0 || end == p || v > UINT32_MAX || *count == max ||
            (*end != ',' && *end != '\0')) {
            return -1;
        }
        layers[(*count)++] = (uint32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    return *count > 0 ? 0 : -1;
}

static void print_capabilities(const da3_model *model) {
    da3_capabilities caps = 0;
    if (da3_model_capabilities(model, &caps) != DA3_OK) {
        return;
    }
    static const struct {
        da3_capabilities bit;
        const char *name;
    } names[] = {{DA3_CAP_POSE, "pose"},
                 {DA3_CAP_CONFIDENCE, "confidence"},
                 {DA3_CAP_SKY, "sky"},
                 {DA3_CAP_METRIC_DEPTH, "metric-depth"},
                 {DA3_CAP_CANONICAL_METRIC_DEPTH, "canonical-metric-depth"},
                 {DA3_CAP_KNOWN_CAMERAS, "known-cameras"},
                 {DA3_CAP_RAY_POSE, "ray-pose"}};
    printf("capabilities:");
    for (size_t i = 0; i < COUNT(names); i++) {
        if (caps & names[i].bit) {
            printf(" %s", names[i].name);
        }
    }
    printf(" (backbone of %u blocks)\n", da3_model_backbone_depth(model));
}

static void print_matrix(const char *name, const float *m, int rows, int cols) {
    printf("  %s:\n", name);
    for (int r = 0; r < rows; r++) {
        printf("    [");
        for (int c = 0; c < cols; c++) {
            printf(c ? " %11.5f" : "%11.5f", (double)m[r * cols + c]);
        }
        printf("]\n");
    }
}

/* What a step returns when the program goes on; otherwise it returns the exit status. */
#define GO_ON (-1)

/* What the command line asks for, besides the da3_options it sets directly. */
struct invocation {
    const char *model_name;
    const char *out_dir;
    bool accelerate, png;
    bool ply, glb, colmap, png16, pfm, points, at_input;
    float conf_percentile;
    da3_export_flags export_flags;
    unsigned long repeat;
    da3_precision precision;
    const char *extrinsics_path, *intrinsics_path;
    const char **images; /* argc entries allocated, n_images used */
    size_t n_images;
    uint32_t layers[64]; /* options->export_feat_layers points here */
};

/* Known cameras read from .npy files (malloc'ed; NULL when none were given). */
struct known_cameras {
    float *extrinsics, *intrinsics;
};

/* What the report read from the result, for the files written after it. */
struct outputs {
    size_t views, height, width;
    bool cameras, has_scale, has_alignment;
    float *extrinsics, *intrinsics; /* views x 3x4 and views x 3x3, when `cameras` */
    float scale, alignment;
};

/* Parses a --option's value into inv / opts; returns GO_ON, or 2 after a message. */
static int parse_value(const char *a, const char *value, struct invocation *inv,
                       da3_options *opts) {
    int idx;
    if (strcmp(a, "--model") == 0) {
        inv->model_name = value;
    } else if (strcmp(a, "--extrinsics") == 0) {
        inv->extrinsics_path = value;
    } else if (strcmp(a, "--intrinsics") == 0) {
        inv->intrinsics_path = value;
    } else if (strcmp(a, "--export-layers") == 0) {
        if (parse_layers(value, inv->layers, &opts->export_feat_layer_count,
                         (uint32_t)COUNT(inv->layers)) != 0) {
            fprintf(stderr, "da3_infer: --export-layers needs block numbers like 3,7, got '%s'\n",
                    value);
            return 2;
        }
        opts->export_feat_layers = inv->layers;
    } else if (strcmp(a, "--out") == 0) {
        inv->out_dir = value;
    } else if (strcmp(a, "--conf-percentile") == 0) {
        char *end = NULL;
        errno = 0;
        double p = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !(p >= 0.0 && p <= 100.0)) {
            fprintf(stderr, "da3_infer: --conf-percentile needs a number from 0 to 100, got '%s'\n",
                    value);
            return 2;
        }
        inv->conf_percentile = (float)p;
    } else if (strcmp(a, "--precision") == 0) {
        if ((idx = lookup(value, PRECISION_NAMES, COUNT(PRECISION_NAMES))) < 0) {
            fprintf(stderr, "da3_infer: unknown precision '%s'\n", value);
            return 2;
        }
        inv->precision = PRECISION_VALUES[idx];
    } else if (strcmp(a, "--resize-method") == 0) {
        if ((idx = lookup(value, RESIZE_NAMES, COUNT(RESIZE_NAMES))) < 0) {
            fprintf(stderr, "da3_infer: unknown resize method '%s'\n", value);
            return 2;
        }
        opts->resize_method = RESIZE_VALUES[idx];
    } else if (strcmp(a, "--ref-view") == 0) {
        if ((idx = lookup(value, REF_VIEW_NAMES, COUNT(REF_VIEW_NAMES))) < 0) {
            fprintf(stderr, "da3_infer: unknown reference-view strategy '%s'\n", value);
            return 2;
        }
        opts->ref_view_strategy = REF_VIEW_VALUES[idx];
    } else if (strcmp(a, "--repeat") == 0) {
        char *end = NULL;
        errno = 0;
        inv->repeat = strtoul(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || inv->repeat == 0 ||
            inv->repeat > 10000) {
            fprintf(stderr, "da3_infer: --repeat needs a number from 1 to 10000, got '%s'\n",
                    value);
            return 2;
        }
    } else { /* --res */
        char *end = NULL;
        errno = 0;
        unsigned long res = strtoul(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || res > UINT32_MAX) {
            fprintf(stderr, "da3_infer: --res needs a number, got '%s'\n", value);
            return 2;
        }
        opts->process_res = (uint32_t)res;
    }
    return GO_ON;
}

/* Step 1, the command line: fills inv and opts. Returns GO_ON; 0 after --help; 2 on a usage
 * error (message and usage on stderr). */
static int parse_args(int argc, char **argv, struct invocation *inv, da3_options *opts) {
    /* The options that take a value (parse_value reads it). */
    static const char *const WITH_VALUE[] = {
        "--model", "--precision", "--res", "--repeat", "--resize-method", "--ref-view", "--out",
        "--extrinsics", "--intrinsics", "--export-layers", "--conf-percentile"};
    /* The switches of the geometry exports and where each is stored. */
    const char *const EXPORT_SWITCHES[] = {"--ply", "--glb",    "--colmap",  "--png16",
                                           "--pfm", "--points", "--at-input"};
    bool *const export_targets[] = {&inv->ply, &inv->glb,    &inv->colmap,  &inv->png16,
                                    &inv->pfm, &inv->points, &inv->at_input};
    int which;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--accelerate") == 0) {
            inv->accelerate = true;
        } else if (strcmp(a, "--png") == 0) {
            inv->png = true;
        } else if (strcmp(a, "--ray-pose") == 0) {
            opts->use_ray_pose = 1;
        } else if (strcmp(a, "--no-align-scale") == 0) {
            opts->align_to_input_ext_scale = 0;
        } else if ((which = lookup(a, EXPORT_SWITCHES, COUNT(EXPORT_SWITCHES))) >= 0) {
            *export_targets[which] = true;
        } else if (strcmp(a, "--drop-sky") == 0) {
            inv->export_flags |= DA3_EXPORT_DROP_SKY;
        } else if (strcmp(a, "--input-pixels") == 0) {
            inv->export_flags |= DA3_EXPORT_INPUT_PIXELS;
        } else if (lookup(a, WITH_VALUE, COUNT(WITH_VALUE)) >= 0) {
            if (value == NULL) {
                fprintf(stderr, "da3_infer: %s needs a value\n", a);
                goto usage_error;
            }
            i++;
            if (parse_value(a, value, inv, opts) != GO_ON) {
                goto usage_error;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "da3_infer: unknown option %s\n", a);
            goto usage_error;
        } else {
            inv->images[inv->n_images++] = a;
        }
    }
    if (inv->model_name == NULL || inv->n_images == 0) {
        fprintf(stderr, "da3_infer: %s\n",
                inv->model_name == NULL ? "--model is required" : "at least one image is required");
        goto usage_error;
    }
    if ((inv->extrinsics_path == NULL) != (inv->intrinsics_path == NULL)) {
        fprintf(stderr, "da3_infer: --extrinsics and --intrinsics go together\n");
        goto usage_error;
    }
    return GO_ON;
usage_error:
    usage(stderr);
    return 2;
}

/* Step 2, known cameras: reads --extrinsics / --intrinsics (when given), checks their shapes
 * against the image count and points opts at them. Returns GO_ON or 2. */
static int read_known_cameras(const struct invocation *inv, da3_options *opts,
                              struct known_cameras *cameras) {
    if (inv->extrinsics_path == NULL) {
        return GO_ON;
    }
    size_t es[3], ks[3], n = inv->n_images;
    int en = 0, kn = 0;
    cameras->extrinsics = read_npy(inv->extrinsics_path, es, &en, 3);
    cameras->intrinsics =
        cameras->extrinsics ? read_npy(inv->intrinsics_path, ks, &kn, 3) : NULL;
    if (cameras->intrinsics == NULL) {
        return 2;
    }
    if (en != 3 || es[0] != n || (es[1] != 3 && es[1] != 4) || es[2] != 4 || kn != 3 ||
        ks[0] != n || ks[1] != 3 || ks[2] != 3) {
        fprintf(stderr,
                "da3_infer: with %zu images the cameras must be shaped (%zu,4,4) or (%zu,3,4) "
                "and (%zu,3,3)\n",
                n, n, n, n);
        return 2;
    }
    opts->extrinsics = cameras->extrinsics;
    opts->extrinsics_rows = (uint32_t)es[1];
    opts->intrinsics = cameras->intrinsics;
    return GO_ON;
}

/* Step 3, the options as a whole: bad ones (e.g. --res 0) are reported before the slow model
 * load. Returns GO_ON or 1. */
static int validate_options(const da3_options *opts) {
    da3_status st = da3_options_validate(opts);
    return st == DA3_OK ? GO_ON : fail("da3_options_validate", st);
}

/* Step 4, the model: loads it and prints what it is and can do. Returns GO_ON or 1. */
static int load_model(const struct invocation *inv, da3_model **model) {
    printf("libda3 %s (header %d.%d.%d)\n", da3_version(), DA3_VERSION_MAJOR, DA3_VERSION_MINOR,
           DA3_VERSION_PATCH);
    double t0 = now_ms();
    da3_status st = da3_create(inv->model_name, inv->accelerate, inv->precision, model);
    if (st != DA3_OK) {
        return fail("da3_create", st);
    }
    printf("model %s: preset %s, device %s, precision %s, loaded in %.1f ms\n", inv->model_name,
           da3_model_preset(*model), da3_model_device(*model),
           da3_precision_name(da3_model_precision(*model)), now_ms() - t0);
    print_capabilities(*model);
    return GO_ON;
}

/* Step 5, inference on all images as one scene. With --repeat N the call runs N times (the
 * first one pays for warm-up: kernel selection, allocator growth) and the last result is
 * kept. Prints the sizes and the time. Returns GO_ON or 1. */
static int run_inference(const da3_model *model, const struct invocation *inv,
                         const da3_options *opts, da3_result **result) {
    double infer_ms = 0.0, first_ms = 0.0, best_ms = INFINITY;
    for (unsigned long r = 0; r < inv->repeat; r++) {
        da3_result_free(*result);
        *result = NULL;
        double t0 = now_ms();
        da3_status st = da3_infer_files(model, inv->images, inv->n_images, opts, result);
        infer_ms = now_ms() - t0;
        if (st != DA3_OK) {
            return fail("da3_infer_files", st);
        }
        if (r == 0) {
            first_ms = infer_ms;
        }
        best_ms = infer_ms < best_ms ? infer_ms : best_ms;
    }
    if (inv->repeat > 1) {
        printf("%lu runs: first %.1f ms, last %.1f ms, best %.1f ms\n", inv->repeat, first_ms,
               infer_ms, best_ms);
    }
    printf("%zu view(s), processed size %zux%zu (W x H), inference %.1f ms\n",
           da3_result_view_count(*result), (size_t)da3_result_width(*result),
           (size_t)da3_result_height(*result), infer_ms);
    return GO_ON;
}

/* Step 6, the report: per view depth min/mean/max and the cameras, then the metric scale,
 * the alignment to known cameras and any warnings; fills out for the files. Returns GO_ON
 * or 1. */
static int report(const da3_result *result, const struct invocation *inv, const da3_options *opts,
                  struct outputs *out) {
    size_t n = out->views = da3_result_view_count(result);
    size_t h = out->height = da3_result_height(result), w = out->width = da3_result_width(result);
    out->cameras = da3_result_has_cameras(result);
    out->extrinsics = calloc(n * 12, sizeof(float));
    out->intrinsics = calloc(n * 9, sizeof(float));
    if (out->extrinsics == NULL || out->intrinsics == NULL) {
        fprintf(stderr, "da3_infer: out of memory\n");
        return 1;
    }
    for (size_t v = 0; v < n; v++) {
        const float *depth = da3_result_depth(result, v);
        if (depth == NULL) {
            return fail("da3_result_depth", DA3_ERR_INVALID_ARGUMENT);
        }
        double lo = INFINITY, hi = -INFINITY, sum = 0.0;
        size_t valid = 0;
        for (size_t i = 0; i < h * w; i++) {
            double d = depth[i];
            if (isfinite(d)) {
                lo = d < lo ? d : lo;
                hi = d > hi ? d : hi;
                sum += d;
                valid++;
            }
        }
        printf("view %zu (%s): depth min %.4f mean %.4f max %.4f (%zu finite of %zu)\n", v,
               inv->images[v], lo, valid ? sum / (double)valid : NAN, hi, valid, h * w);
        if (out->cameras) {
            da3_status st;
            if ((st = da3_result_extrinsics(result, v, out->extrinsics + v * 12)) != DA3_OK ||
                (st = da3_result_intrinsics(result, v, out->intrinsics + v * 9)) != DA3_OK) {
                return fail("reading cameras", st);
            }
            print_matrix("extrinsics (world to camera, 3x4)", out->extrinsics + v * 12, 3, 4);
            print_matrix("intrinsics (3x3)", out->intrinsics + v * 9, 3, 3);
        }
    }
    if (!out->cameras) {
        printf("this model predicts no cameras: extrinsics.npy and intrinsics.npy are skipped\n");
    }
    out->has_scale = da3_result_scale_factor(result, &out->scale) == DA3_OK;
    out->has_alignment = da3_result_alignment_scale(result, &out->alignment) == DA3_OK;
    if (out->has_scale) {
        printf("metric scale factor %.6f (depth and translations in metres)\n", (double)out->scale);
    } else if (da3_result_is_metric(result)) {
        printf("depth in metres\n");
    }
    if (out->has_alignment) {
        printf("aligned to the given cameras: scale %.6f (%s)\n", (double)out->alignment,
               opts->align_to_input_ext_scale ? "depth divided by it, given extrinsics returned"
                                              : "predicted depth scale kept");
    }
    for (size_t i = 0; i < da3_result_warning_count(result); i++) {
        printf("warning: %s\n", da3_result_warning(result, i));
    }
    return GO_ON;
}

/* Step 7, the files: the .npy outputs the result has, exported features and, with --png, a
 * depth PNG per view, into out_dir (created). Returns GO_ON or 1. */
static int write_outputs(const da3_result *result, const struct invocation *inv,
                         const struct outputs *out) {
    const char *dir = inv->out_dir;
    if (make_dirs(dir) != 0) {
        fprintf(stderr, "da3_infer: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    size_t n = out->views;
    size_t maps[3] = {n, out->height, out->width}, ext[3] = {n, 3, 4}, intr[3] = {n, 3, 3},
           one[1] = {1};
    /* Confidence and sky exist for some models only (NULL otherwise). */
    const float *conf = da3_result_confidence_all(result);
    const float *sky = da3_result_sky_all(result);
    if (save_npy(dir, "depth.npy", da3_result_depth_all(result), maps, 3) != 0 ||
        (conf != NULL && save_npy(dir, "conf.npy", conf, maps, 3) != 0) ||
        (sky != NULL && save_npy(dir, "sky.npy", sky, maps, 3) != 0) ||
        (out->cameras && (save_npy(dir, "extrinsics.npy", out->extrinsics, ext, 3) != 0 ||
                          save_npy(dir, "intrinsics.npy", out->intrinsics, intr, 3) != 0)) ||
        (out->has_scale && save_npy(dir, "scale_factor.npy", &out->scale, one, 1) != 0) ||
        (out->has_alignment &&
         save_npy(dir, "alignment_scale.npy", &out->alignment, one, 1) != 0)) {
        return 1;
    }
    for (size_t i = 0; i < da3_result_feature_count(result); i++) {
        uint32_t layer = 0;
        size_t shape[4];
        const float *data = da3_result_feature_data(result, i);
        da3_status st = da3_result_feature_info(result, i, &layer, shape);
        if (st != DA3_OK || data == NULL) {
            return fail("reading features", st != DA3_OK ? st : DA3_ERR_INVALID_ARGUMENT);
        }
        char name[64];
        snprintf(name, sizeof name, "features_%u.npy", layer);
        printf("features of block %u: %zu x %zu x %zu x %zu\n", layer, shape[0], shape[1],
               shape[2], shape[3]);
        if (save_npy(dir, name, data, shape, 4) != 0) {
            return 1;
        }
    }
    for (size_t v = 0; inv->png && v < n; v++) {
        char name[64];
        snprintf(name, sizeof name, "depth_%zu.png", v);
        char *path = join(dir, name);
        if (path == NULL) {
            return 1;
        }
        da3_status st = da3_result_write_depth_png(result, v, path);
        if (st != DA3_OK) {
            free(path);
            return fail("da3_result_write_depth_png", st);
        }
        printf("wrote %s\n", path);
        free(path);
    }
    return GO_ON;
}

/* Writes one per-view file named prefix<v>suffix in dir through write(result, v, path).
 * Returns GO_ON or 1. */
static int per_view_file(const da3_result *result, const char *dir, size_t v, const char *prefix,
                         const char *suffix, const char *what,
                         da3_status (*write)(const da3_result *, size_t, const char *)) {
    char name[64];
    snprintf(name, sizeof name, "%s%zu%s", prefix, v, suffix);
    char *path = join(dir, name);
    if (path == NULL) {
        return 1;
    }
    da3_status st = write(result, v, path);
    if (st == DA3_OK) {
        printf("wrote %s\n", path);
    }
    free(path);
    return st == DA3_OK ? GO_ON : fail(what, st);
}

/* 16-bit PNG with the full-range scale (printed), in the per_view_file shape. */
static da3_status write_png16(const da3_result *result, size_t view, const char *path) {
    float scale = 0.0f;
    da3_status st = da3_result_write_depth_png16(result, view, path, 0.0f, &scale);
    if (st == DA3_OK) {
        printf("view %zu: 16-bit depth = value / %.6g\n", view, (double)scale);
    }
    return st;
}

/* Depth at the input size (bilinear) as depth_input_<v>.npy. Returns GO_ON or 1. */
static int write_depth_at_input(const da3_result *result, const char *dir, size_t v) {
    uint32_t w = 0, h = 0;
    da3_status st = da3_result_input_size(result, v, &w, &h);
    if (st != DA3_OK) {
        return fail("da3_result_input_size", st);
    }
    float *depth = malloc((size_t)w * h * sizeof(float));
    if (depth == NULL) {
        fprintf(stderr, "da3_infer: out of memory\n");
        return 1;
    }
    st = da3_result_map_at_input(result, v, DA3_MAP_DEPTH, DA3_INTERPOLATION_BILINEAR, depth, w,
                                 h);
    char name[64];
    snprintf(name, sizeof name, "depth_input_%zu.npy", v);
    size_t shape[2] = {h, w};
    int rc = st != DA3_OK ? fail("da3_result_map_at_input", st)
                          : (save_npy(dir, name, depth, shape, 2) != 0 ? 1 : GO_ON);
    free(depth);
    return rc;
}

/* Step 8, geometry and export (--ply, --glb, --colmap, --png16, --pfm, --points,
 * --at-input) into out_dir. Returns GO_ON or 1. */
static int write_exports(const da3_result *result, const struct invocation *inv,
                         const struct outputs *out) {
    const char *dir = inv->out_dir;
    size_t n = out->views, count = 0;
    struct {
        bool on;
        const char *name, *what;
        da3_status (*write)(const da3_result *, const char *, float, float, da3_export_flags,
                            size_t *);
    } clouds[2] = {{inv->ply, "scene.ply", "da3_result_write_ply", da3_result_write_ply},
                   {inv->glb, "scene.glb", "da3_result_write_glb", da3_result_write_glb}};
    for (size_t i = 0; i < 2; i++) {
        if (!clouds[i].on) {
            continue;
        }
        char *path = join(dir, clouds[i].name);
        if (path == NULL) {
            return 1;
        }
        da3_status st =
            clouds[i].write(result, path, 0.0f, inv->conf_percentile, inv->export_flags, &count);
        if (st == DA3_OK) {
            printf("wrote %s (%zu points)\n", path, count);
        }
        free(path);
        if (st != DA3_OK) {
            return fail(clouds[i].what, st);
        }
    }
    if (inv->colmap) {
        char *path = join(dir, "colmap");
        const char **names = calloc(n ? n : 1, sizeof *names);
        if (path == NULL || names == NULL) {
            free(path);
            free(names);
            return 1;
        }
        for (size_t v = 0; v < n; v++) {
            const char *slash = strrchr(inv->images[v], '/');
            names[v] = slash ? slash + 1 : inv->images[v];
        }
        da3_status st = da3_result_write_colmap(result, path, names, 0.0f, inv->conf_percentile,
                                                inv->export_flags, &count);
        if (st == DA3_OK) {
            printf("wrote COLMAP text model to %s (%zu points)\n", path, count);
        }
        free(path);
        free(names);
        if (st != DA3_OK) {
            return fail("da3_result_write_colmap", st);
        }
    }
    for (size_t v = 0; v < n; v++) {
        if ((inv->png16 && per_view_file(result, dir, v, "depth16_", ".png",
                                         "da3_result_write_depth_png16", write_png16) != GO_ON) ||
            (inv->pfm && per_view_file(result, dir, v, "depth_", ".pfm",
                                       "da3_result_write_depth_pfm",
                                       da3_result_write_depth_pfm) != GO_ON) ||
            (inv->at_input && write_depth_at_input(result, dir, v) != GO_ON)) {
            return 1;
        }
    }
    if (inv->at_input && out->cameras) {
        float *k = calloc(n * 9, sizeof(float));
        size_t shape[3] = {n, 3, 3};
        da3_status st = DA3_OK;
        for (size_t v = 0; k != NULL && v < n && st == DA3_OK; v++) {
            st = da3_result_intrinsics_at_input(result, v, k + v * 9);
        }
        int rc = k == NULL ? 1
                 : st != DA3_OK
                     ? fail("da3_result_intrinsics_at_input", st)
                     : (save_npy(dir, "intrinsics_input.npy", k, shape, 3) != 0 ? 1 : GO_ON);
        free(k);
        if (rc != GO_ON) {
            return rc;
        }
    }
    if (inv->points) {
        size_t hw3 = out->height * out->width * 3, shape[4] = {n, out->height, out->width, 3};
        float *xyz = malloc(n * hw3 * sizeof(float));
        da3_status st = DA3_OK;
        for (size_t v = 0; xyz != NULL && v < n && st == DA3_OK; v++) {
            st = da3_result_points(result, v, xyz + v * hw3);
        }
        int rc = xyz == NULL        ? 1
                 : st != DA3_OK     ? fail("da3_result_points", st)
                 : save_npy(dir, "points.npy", xyz, shape, 4) != 0 ? 1
                                                                    : GO_ON;
        free(xyz);
        if (rc != GO_ON) {
            return rc;
        }
    }
    return GO_ON;
}

int main(int argc, char **argv) {
    da3_options opts;
    da3_status st = da3_options_default(&opts, sizeof opts);
    if (st != DA3_OK) {
        return fail("da3_options_default", st);
    }
    struct invocation inv = {.out_dir = "out", .repeat = 1, .precision = DA3_PRECISION_AUTO};
    inv.images = calloc((size_t)argc, sizeof *inv.images);
    if (inv.images == NULL) {
        return 1;
    }
    struct known_cameras cameras = {NULL, NULL};
    struct outputs out = {0};
    da3_model *model = NULL;
    da3_result *result = NULL;

    int rc = parse_args(argc, argv, &inv, &opts);
    if (rc == GO_ON) {
        rc = read_known_cameras(&inv, &opts, &cameras);
    }
    if (rc == GO_ON) {
        rc = validate_options(&opts);
    }
    if (rc == GO_ON) {
        rc = load_model(&inv, &model);
    }
    if (rc == GO_ON) {
        rc = run_inference(model, &inv, &opts, &result);
    }
    if (rc == GO_ON) {
        rc = report(result, &inv, &opts, &out);
    }
    if (rc == GO_ON) {
        rc = write_outputs(result, &inv, &out);
    }
    if (rc == GO_ON) {
        rc = write_exports(result, &inv, &out);
    }

    free(out.extrinsics);
    free(out.intrinsics);
    da3_result_free(result);
    da3_free(model);
    free(cameras.extrinsics);
    free(cameras.intrinsics);
    free(inv.images);
    return rc == GO_ON ? 0 : rc;
}
