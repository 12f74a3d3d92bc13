/*
 * The whole DA3 family through the C API: capabilities, known cameras, exported features, ray
 * pose, sky / metric / scale-factor outputs, warnings and the older da3_options sizes. Each
 * check compares outputs with each other or with what the options promise (not only "status
 * OK"); tests/c_api.rs also compares the C example's outputs with the official package's.
 *
 * Checkpoints come from the environment (tests/c_api.rs sets them from target/oracle):
 *   DA3_TEST_CHECKPOINT                 any-view (da3-small)
 *   DA3_TEST_NESTED_CHECKPOINT          nested (da3nested-reduced)
 *   DA3_TEST_NESTED_ALLSKY_CHECKPOINT   nested whose sky head sees a blue image as all sky
 *   DA3_TEST_METRIC_CHECKPOINT          da3metric-large (large: loaded once)
 * A group whose variable is unset is skipped, and says so.
 *
 * Prints "N passed, M failed, K skipped" last (check.h) and exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "da3.h"

/* Largest |a - b| over the largest |b|: a relative error for maps of any scale. */
static double rel_diff(const float *a, const float *b, size_t n) {
    double diff = 0.0, range = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        diff = d > diff ? d : diff;
        range = fabs((double)b[i]) > range ? fabs((double)b[i]) : range;
    }
    return range > 0.0 ? diff / range : diff;
}

static int all_finite(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) {
            return 0;
        }
    }
    return 1;
}

static da3_model *load(const char *path) {
    da3_model *model = NULL;
    da3_status st = da3_create(path, false, DA3_PRECISION_FP32, &model);
    char name[256];
    snprintf(name, sizeof name, "da3_create(%s)", path);
    CHECK_OK(name, st);
    return st == DA3_OK ? model : NULL;
}

static void expect_capabilities(const char *name, const da3_model *model, da3_capabilities want,
                                uint32_t depth) {
    da3_capabilities flags = 0xffffffffu;
    da3_status st = da3_model_capabilities(model, &flags);
    CHECK(st == DA3_OK && flags == want && da3_model_backbone_depth(model) == depth,
          "%s (flags 0x%x, want 0x%x; backbone of %u blocks, want %u)", name, flags, want,
          da3_model_backbone_depth(model), depth);
}

/* ---------------------------------------------------------------------------------------- */
/* Scenes                                                                                    */
/* ---------------------------------------------------------------------------------------- */

#define VIEWS 4
#define IW 224
#define IH 168
#define RES 112 /* 224x168 -> 112x84 */

static uint8_t g_pixels[VIEWS][IH * IW * 3];
static da3_image g_views[VIEWS];

static void make_scene(void) {
    for (int v = 0; v < VIEWS; v++) {
        for (int y = 0; y < IH; y++) {
            for (int x = 0; x < IW; x++) {
                uint8_t *p = &g_pixels[v][(y * IW + x) * 3];
                p[0] = (uint8_t)(x + 20 * v);
                p[1] = (uint8_t)(y * 3 / 2);
                p[2] = (uint8_t)(((x / 16 + y / 16 + v) % 2) * 160 + 40);
            }
        }
        g_views[v] = (da3_image){g_pixels[v], IW, IH, IW * 3, DA3_PIXEL_RGB8};
    }
}

/*
 * A circle of cameras around the origin looking at it (OpenCV convention), view v at angle
 * 25 degrees * v: world-to-camera 4x4 and 3x4, and intrinsics in input-image pixels.
 */
static float g_ext44[VIEWS * 16], g_ext34[VIEWS * 12], g_intr[VIEWS * 9];

static void make_rig(void) {
    for (int v = 0; v < VIEWS; v++) {
        double a = 25.0 * v * 3.14159265358979 / 180.0, r = 2.0;
        double c[3] = {r * sin(a), 0.1 * v, -r * cos(a)};
        double R[3][3] = {{cos(a), 0, sin(a)}, {0, 1, 0}, {-sin(a), 0, cos(a)}};
        for (int i = 0; i < 3; i++) {
            double t = -(R[i][0] * c[0] + R[i][1] * c[1] + R[i][2] * c[2]);
            for (int j = 0; j < 3; j++) {
                g_ext44[v * 16 + i * 4 + j] = g_ext34[v * 12 + i * 4 + j] = (float)R[i][j];
            }
            g_ext44[v * 16 + i * 4 + 3] = g_ext34[v * 12 + i * 4 + 3] = (float)t;
        }
        g_ext44[v * 16 + 12] = g_ext44[v * 16 + 13] = g_ext44[v * 16 + 14] = 0.0f;
        g_ext44[v * 16 + 15] = 1.0f;
        float k[9] = {180.0f, 0.0f, IW / 2.0f, 0.0f, 180.0f, IH / 2.0f, 0.0f, 0.0f, 1.0f};
        memcpy(&g_intr[v * 9], k, sizeof k);
    }
}

static da3_options base_options(uint32_t res) {
    da3_options o;
    da3_options_default(&o, sizeof o);
    o.process_res = res;
    return o;
}

/* ---------------------------------------------------------------------------------------- */
/* any-view: known cameras, features, ray pose, old option sizes                             */
/* ---------------------------------------------------------------------------------------- */

static void test_known_cameras(const da3_model *model) {
    da3_options o = base_options(RES);
    o.extrinsics = g_ext44;
    o.extrinsics_rows = 4;
    o.intrinsics = g_intr;
    da3_result *r44 = NULL, *r34 = NULL, *off = NULL, *plain = NULL;
    CHECK_OK("known cameras 4x4, aligned to their scale",
             da3_infer(model, g_views, VIEWS, &o, &r44));
    o.extrinsics = g_ext34;
    o.extrinsics_rows = 3;
    CHECK_OK("known cameras 3x4", da3_infer(model, g_views, VIEWS, &o, &r34));
    o.align_to_input_ext_scale = 0;
    CHECK_OK("known cameras 3x4, predicted scale kept", da3_infer(model, g_views, VIEWS, &o, &off));
    da3_options none = base_options(RES);
    CHECK_OK("same scene without cameras", da3_infer(model, g_views, VIEWS, &none, &plain));
    if (!r44 || !r34 || !off || !plain) {
        goto done;
    }
    size_t n = (size_t)VIEWS * da3_result_width(r44) * da3_result_height(r44);
    CHECK(memcmp(da3_result_depth_all(r44), da3_result_depth_all(r34), n * sizeof(float)) == 0,
          "3x4 and 4x4 cameras give the same depth");
    float s44 = -1, s34 = -2, soff = -3, sp = -4;
    CHECK_OK("alignment scale (4x4)", da3_result_alignment_scale(r44, &s44));
    CHECK_OK("alignment scale (3x4)", da3_result_alignment_scale(r34, &s34));
    CHECK_OK("alignment scale (scale kept)", da3_result_alignment_scale(off, &soff));
    CHECK(s44 > 0 && s44 == s34 && s44 == soff,
          "alignment scale: positive, the same with the flag on or off (%g, %g, %g)", (double)s44,
          (double)s34, (double)soff);
    CHECK_STATUS("no alignment scale without cameras", da3_result_alignment_scale(plain, &sp),
                 DA3_ERR_NOT_AVAILABLE, "no known cameras");
    CHECK(sp == -4, "*out untouched when not available");

    /* align on: depth / s; off: the predicted depth. So off == on * s. */
    const float *don = da3_result_depth_all(r34), *doff = da3_result_depth_all(off);
    float *scaled = malloc(n * sizeof *scaled);
    for (size_t i = 0; scaled && i < n; i++) {
        scaled[i] = don[i] * s34;
    }
    double e = scaled ? rel_diff(scaled, doff, n) : 1.0;
    CHECK(e < 1e-5, "depth with the flag on, times the scale == depth with it off (rel diff %.2e)",
          e);
    free(scaled);

    /* align on: the given extrinsics come back as they were given. */
    double worst = 0.0, moved = 0.0;
    for (size_t v = 0; v < VIEWS; v++) {
        float got[12], kept[12];
        da3_result_extrinsics(r34, v, got);
        da3_result_extrinsics(off, v, kept);
        for (int i = 0; i < 12; i++) {
            worst = fmax(worst, fabs((double)got[i] - g_ext34[v * 12 + i]));
            moved = fmax(moved, fabs((double)kept[i] - g_ext34[v * 12 + i]));
        }
    }
    CHECK(worst < 1e-5 && moved > 1e-3,
          "flag on: result extrinsics are the given ones; off: moved into the prediction's frame "
          "(max diff %.2e, flag off: %.2e)",
          worst, moved);

    /* Intrinsics carried through the 2x downscale: focal 180 -> 90. */
    float k[9];
    da3_result_intrinsics(r34, 0, k);
    CHECK(fabs(k[0] - 90.0) < 1e-3 && fabs(k[4] - 90.0) < 1e-3,
          "given intrinsics scaled to the processed image (fx %g fy %g)", (double)k[0],
          (double)k[4]);
    CHECK(rel_diff(da3_result_depth_all(off), da3_result_depth_all(plain), n) > 1e-4,
          "conditioning on cameras changes the prediction");
done:
    da3_result_free(r44);
    da3_result_free(r34);
    da3_result_free(off);
    da3_result_free(plain);
}

static void test_bad_cameras(const da3_model *model) {
    da3_options o = base_options(RES);
    float e[VIEWS * 12], k[VIEWS * 9];
    da3_result *r = NULL;
    o.extrinsics = e;
    o.intrinsics = k;
    o.extrinsics_rows = 3;

    memcpy(e, g_ext34, sizeof e);
    memcpy(k, g_intr, sizeof k);
    e[2 * 12 + 5] = NAN;
    CHECK_STATUS("NaN in extrinsics of view 2", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "extrinsics of view 2", "non-finite");
    memcpy(e, g_ext34, sizeof e);
    k[1 * 9 + 2] = INFINITY;
    CHECK_STATUS("infinite intrinsics of view 1", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "intrinsics of view 1", "non-finite");
    memcpy(k, g_intr, sizeof k);
    for (int i = 0; i < 3; i++) {
        e[3 * 12 + i * 4 + i] *= 2.0f; /* view 3: a scaled rotation block */
    }
    CHECK_STATUS("non-rigid extrinsics", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "view 3", "not a rotation");
    memcpy(e, g_ext34, sizeof e);
    for (int i = 0; i < 12; i++) {
        e[i] = 0.0f; /* view 0: all zero, singular */
    }
    CHECK_STATUS("singular extrinsics", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "view 0", "not a rotation");
    memcpy(e, g_ext34, sizeof e);
    k[0] = 0.0f;
    CHECK_STATUS("zero focal length", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "intrinsics of view 0", "focal");
    memcpy(k, g_intr, sizeof k);
    for (int v = 0; v < VIEWS; v++) { /* every camera at the same place */
        memcpy(&e[v * 12], g_ext34, 12 * sizeof(float));
    }
    CHECK_STATUS("coincident cameras cannot be aligned to",
                 da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "collinear or coincide");
    memcpy(e, g_ext34, sizeof e);

    float e44[VIEWS * 16];
    memcpy(e44, g_ext44, sizeof e44);
    e44[16 + 12] = 1.0f;
    o.extrinsics = e44;
    o.extrinsics_rows = 4;
    CHECK_STATUS("4x4 with a bad last row", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "view 1", "last row");
    o.extrinsics = e;
    o.extrinsics_rows = 5;
    CHECK_STATUS("extrinsics_rows = 5", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "extrinsics_rows is 5");
    o.extrinsics_rows = 0;
    CHECK_STATUS("extrinsics_rows unset", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "extrinsics_rows is 0");
    o.extrinsics_rows = 3;
    o.intrinsics = NULL;
    CHECK_STATUS("extrinsics without intrinsics", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_NULL_POINTER, "options.intrinsics is NULL");
    CHECK_STATUS("  ... also from da3_options_validate", da3_options_validate(&o),
                 DA3_ERR_NULL_POINTER, "options.intrinsics is NULL");
    o.intrinsics = k;
    o.extrinsics = NULL;
    CHECK_STATUS("intrinsics without extrinsics", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_NULL_POINTER, "options.extrinsics is NULL");
    o.extrinsics = (const float *)((const char *)e + 2);
    CHECK_STATUS("misaligned extrinsics", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "aligned");
    o.extrinsics = e;
    o.align_to_input_ext_scale = 2;
    CHECK_STATUS("align_to_input_ext_scale = 2", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "align_to_input_ext_scale is 2");
    CHECK(r == NULL, "no result after the failures");
}

static void test_features(const da3_model *model) {
    da3_options o = base_options(RES);
    uint32_t layers[2] = {7, 3}, seven = 7;
    o.export_feat_layers = layers;
    o.export_feat_layer_count = 2;
    da3_result *r = NULL, *r7 = NULL;
    CHECK_OK("export features of blocks 7 and 3", da3_infer(model, g_views, 2, &o, &r));
    o.export_feat_layers = &seven;
    o.export_feat_layer_count = 1;
    CHECK_OK("export block 7 alone", da3_infer(model, g_views, 2, &o, &r7));
    if (r && r7) {
        uint32_t layer = 99, layer7 = 99;
        size_t shape[4] = {0}, shape7[4] = {0};
        CHECK(da3_result_feature_count(r) == 2 && da3_result_feature_count(r7) == 1,
              "feature count 2 (and 1)");
        CHECK_OK("feature 0 info", da3_result_feature_info(r, 0, &layer, shape));
        da3_result_feature_info(r7, 0, &layer7, shape7);
        uint32_t w = da3_result_width(r), h = da3_result_height(r);
        CHECK(layer == 7 && shape[0] == 2 && shape[1] == h / 14 && shape[2] == w / 14 &&
                  shape[3] == 384,
              "features in request order, shaped (N, H/14, W/14, 384) (layer %u shape "
              "%zux%zux%zux%zu for %ux%u)",
              layer, shape[0], shape[1], shape[2], shape[3], w, h);
        size_t n = shape[0] * shape[1] * shape[2] * shape[3];
        const float *f = da3_result_feature_data(r, 0), *f7 = da3_result_feature_data(r7, 0);
        CHECK(f && f7 && all_finite(f, n) && memcmp(shape, shape7, sizeof shape) == 0 &&
                  memcmp(f, f7, n * sizeof *f) == 0,
              "features are finite and the same whatever else is exported");
        CHECK_OK("feature 1 info", da3_result_feature_info(r, 1, &layer, shape));
        CHECK(layer == 3, "feature 1 is block 3");
        CHECK(memcmp(da3_result_feature_data(r, 1), f, n * sizeof *f) != 0,
              "features of different blocks differ");
        CHECK_STATUS("feature index 2", da3_result_feature_info(r, 2, &layer, shape),
                     DA3_ERR_INVALID_ARGUMENT, "feature index 2", "out of range");
        CHECK(da3_result_feature_data(r, 2) == NULL, "feature data index 2 is NULL");
        CHECK_STATUS("feature info: NULL shape", da3_result_feature_info(r, 0, &layer, NULL),
                     DA3_ERR_NULL_POINTER, "shape");
    }
    da3_result_free(r);
    da3_result_free(r7);
    r = NULL;

    uint32_t deep[2] = {3, 12}, twice[2] = {3, 3};
    o.export_feat_layers = deep;
    o.export_feat_layer_count = 2;
    CHECK_STATUS("feature block 12 of a 12-block backbone", da3_infer(model, g_views, 1, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "block 12 does not exist", "0 to 11");
    o.export_feat_layers = twice;
    CHECK_STATUS("feature block listed twice", da3_options_validate(&o),
                 DA3_ERR_INVALID_ARGUMENT, "block 3 twice");
    o.export_feat_layers = NULL;
    CHECK_STATUS("feature count without a list", da3_infer(model, g_views, 1, &o, &r),
                 DA3_ERR_NULL_POINTER, "export_feat_layers is NULL");
    CHECK(r == NULL, "no result after the failures");
}

/* A rotation block of a 3x4 matrix is orthonormal. */
static int is_rotation(const float *m) {
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            double dot = 0;
            for (int k = 0; k < 3; k++) {
                dot += (double)m[i * 4 + k] * m[j * 4 + k];
            }
            if (fabs(dot - (i == j)) > 1e-3) {
                return 0;
            }
        }
    }
    return 1;
}

static void test_ray_pose(const da3_model *model) {
    da3_options o = base_options(RES);
    o.use_ray_pose = 1;
    da3_result *ray = NULL, *dec = NULL;
    CHECK_OK("ray pose", da3_infer(model, g_views, 3, &o, &ray));
    o.use_ray_pose = 0;
    CHECK_OK("camera decoder pose", da3_infer(model, g_views, 3, &o, &dec));
    if (ray && dec) {
        int rigid = 1;
        double differ = 0;
        for (size_t v = 0; v < 3; v++) {
            float a[12], b[12];
            rigid = rigid && da3_result_extrinsics(ray, v, a) == DA3_OK && is_rotation(a) &&
                    all_finite(a, 12);
            da3_result_extrinsics(dec, v, b);
            for (int i = 0; i < 12; i++) {
                differ = fmax(differ, fabs((double)a[i] - b[i]));
            }
        }
        CHECK(rigid, "ray pose: rigid, finite cameras for every view");
        CHECK(differ > 1e-4, "ray pose differs from the camera decoder's");
        size_t n = 3 * (size_t)da3_result_width(ray) * da3_result_height(ray);
        CHECK(memcmp(da3_result_depth_all(ray), da3_result_depth_all(dec), n * sizeof(float)) == 0,
              "ray pose leaves depth as it is");
    }
    da3_result_free(ray);
    da3_result_free(dec);
}

/* Programs built against the 16- and 24-byte da3_options: exactly that many bytes allocated
 * (ASan reports any read past them), results as with today's struct and the same settings. */
static void test_old_option_sizes(const da3_model *model) {
    da3_options today = base_options(56);
    da3_result *want = NULL;
    if (da3_infer(model, g_views, 2, &today, &want) != DA3_OK) {
        CHECK(0, "reference inference for the old option sizes");
        return;
    }
    size_t n = 2 * (size_t)da3_result_width(want) * da3_result_height(want);
    for (size_t size = 16; size <= 24; size += 8) {
        uint32_t *old = malloc(size);
        char name[128];
        snprintf(name, sizeof name, "da3_options_default with struct_size %zu", size);
        CHECK_OK(name, da3_options_default((da3_options *)(void *)old, size));
        CHECK(old[0] == size && old[1] == 504 && (size == 16 || (old[4] == 0 && old[5] == 1)),
              "  ... writes the defaults of that version");
        old[1] = 56;
        da3_result *r = NULL;
        snprintf(name, sizeof name, "da3_infer with a %zu-byte da3_options", size);
        CHECK_OK(name, da3_infer(model, g_views, 2, (const da3_options *)(void *)old, &r));
        CHECK(r && memcmp(da3_result_depth_all(r), da3_result_depth_all(want),
                  n * sizeof(float)) == 0,
              "  ... same depth as today's struct");
        CHECK(r && da3_result_feature_count(r) == 0, "  ... no features, no alignment");
        da3_result_free(r);
        free(old);
    }
    da3_options o = today;
    o.struct_size = 20;
    CHECK_STATUS("struct_size between versions", da3_options_validate(&o),
                 DA3_ERR_INVALID_ARGUMENT, "struct_size is 20");
    o.struct_size = (uint32_t)sizeof o + 8;
    CHECK_STATUS("struct_size from a newer header", da3_options_validate(&o),
                 DA3_ERR_UNSUPPORTED, "newer da3.h");
    da3_result_free(want);
}

static void test_any_view(const char *path) {
    da3_model *model = load(path);
    if (model == NULL) {
        return;
    }
    expect_capabilities("da3-small capabilities: pose, confidence, known cameras, ray pose",
                        model,
                        DA3_CAP_POSE | DA3_CAP_CONFIDENCE | DA3_CAP_KNOWN_CAMERAS |
                            DA3_CAP_RAY_POSE,
                        12);
    da3_result *r = NULL;
    da3_options o = base_options(56);
    if (da3_infer(model, g_views, 1, &o, &r) == DA3_OK) {
        float scale;
        CHECK(da3_result_has_confidence(r) && da3_result_has_cameras(r) && !da3_result_has_sky(r) &&
                  !da3_result_is_metric(r) &&
                  da3_result_scale_factor(r, &scale) == DA3_ERR_NOT_AVAILABLE,
              "any-view result: confidence, cameras, no sky");
        CHECK(da3_result_sky(r, 0) == NULL && strstr(da3_last_error_message(), "no sky head"),
              "  ... sky accessor says why it is NULL");
    }
    da3_result_free(r);
    test_known_cameras(model);
    test_bad_cameras(model);
    test_features(model);
    test_ray_pose(model);
    test_old_option_sizes(model);
    da3_free(model);
}

/* ---------------------------------------------------------------------------------------- */
/* nested, all-sky, metric                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void test_nested(const char *path) {
    da3_model *model = load(path);
    if (model == NULL) {
        return;
    }
    expect_capabilities("nested capabilities: everything but canonical metric", model,
                        DA3_CAP_POSE | DA3_CAP_CONFIDENCE | DA3_CAP_SKY | DA3_CAP_METRIC_DEPTH |
                            DA3_CAP_KNOWN_CAMERAS | DA3_CAP_RAY_POSE,
                        12);
    da3_options o = base_options(RES);
    da3_result *r = NULL;
    CHECK_OK("nested inference", da3_infer(model, g_views, 2, &o, &r));
    if (r) {
        float scale = 0;
        size_t n = 2 * (size_t)da3_result_width(r) * da3_result_height(r);
        CHECK(da3_result_is_metric(r) && da3_result_scale_factor(r, &scale) == DA3_OK &&
                  scale > 0 && da3_result_warning_count(r) == 0,
              "nested: metric, with a positive scale factor, no warning");
        const float *sky = da3_result_sky_all(r), *conf = da3_result_confidence_all(r);
        int sky_ok = sky && conf && da3_result_has_sky(r) && all_finite(sky, n);
        for (size_t i = 0; sky_ok && i < n; i++) {
            sky_ok = sky[i] >= 0.0f && (sky[i] < 0.3f || conf[i] == 1.0f);
        }
        CHECK(sky_ok, "nested: sky >= 0, sky pixels have confidence 1");
    }
    da3_result_free(r);
    r = NULL;
    /* Known cameras through the nested model: its any-view branch takes them. */
    o.extrinsics = g_ext34;
    o.extrinsics_rows = 3;
    o.intrinsics = g_intr;
    float align = 0, scale = 0;
    CHECK_OK("nested with known cameras", da3_infer(model, g_views, VIEWS, &o, &r));
    CHECK(r && da3_result_alignment_scale(r, &align) == DA3_OK && align > 0 &&
              da3_result_scale_factor(r, &scale) == DA3_OK,
          "  ... aligned (scale reported) and metric");
    da3_result_free(r);
    da3_free(model);
}

static void test_nested_allsky(const char *path) {
    da3_model *model = load(path);
    if (model == NULL) {
        return;
    }
    enum { W = 196, H = 140 };
    static uint8_t blue[H * W * 3];
    for (size_t i = 0; i < sizeof blue; i += 3) {
        blue[i] = 60, blue[i + 1] = 120, blue[i + 2] = 220;
    }
    da3_image view = {blue, W, H, W * 3, DA3_PIXEL_RGB8};
    da3_options o = base_options(W);
    da3_result *r = NULL;
    CHECK_OK("all-sky frame through the nested model is no error",
             da3_infer(model, &view, 1, &o, &r));
    if (r) {
        float scale = -1;
        const char *text = da3_result_warning(r, 0);
        CHECK(da3_result_warning_count(r) == 1 &&
                  da3_result_warning_code(r, 0) == DA3_WARNING_METRIC_ALIGNMENT_SKIPPED && text &&
                  strncmp(text, "metric_alignment_skipped: ", 26) == 0,
              "all-sky: one warning, metric_alignment_skipped (%s)", text ? text : "none");
        CHECK(!da3_result_is_metric(r) &&
                  da3_result_scale_factor(r, &scale) == DA3_ERR_NOT_AVAILABLE && scale == -1,
              "all-sky: not metric, no scale factor");
        const float *sky = da3_result_sky_all(r);
        size_t non_sky = 0, n = (size_t)da3_result_width(r) * da3_result_height(r);
        for (size_t i = 0; sky && i < n; i++) {
            non_sky += sky[i] < 0.3f;
        }
        CHECK(sky && non_sky <= 10, "all-sky: the sky map says sky (10 or fewer non-sky pixels)");
        CHECK(da3_result_warning(r, 1) == NULL &&
                  da3_result_warning_code(r, 1) == DA3_WARNING_NONE,
              "warning index 1 is out of range");
    }
    da3_result_free(r);
    da3_free(model);
}

static void test_metric(const char *path) {
    da3_model *model = load(path);
    if (model == NULL) {
        return;
    }
    expect_capabilities("da3metric-large capabilities: sky, canonical metric depth", model,
                        DA3_CAP_SKY | DA3_CAP_CANONICAL_METRIC_DEPTH, 24);
    da3_options o = base_options(56);
    da3_result *r = NULL;
    o.extrinsics = g_ext34;
    o.extrinsics_rows = 3;
    o.intrinsics = g_intr;
    CHECK_STATUS("metric model with known cameras", da3_infer(model, g_views, VIEWS, &o, &r),
                 DA3_ERR_UNSUPPORTED, "no camera encoder", "known cameras");
    o = base_options(56);
    o.use_ray_pose = 1;
    CHECK_STATUS("metric model with ray pose", da3_infer(model, g_views, 1, &o, &r),
                 DA3_ERR_UNSUPPORTED, "no ray head", "use_ray_pose");
    o.use_ray_pose = 0;
    uint32_t too_deep = 24;
    o.export_feat_layers = &too_deep;
    o.export_feat_layer_count = 1;
    CHECK_STATUS("metric model, feature block 24", da3_infer(model, g_views, 1, &o, &r),
                 DA3_ERR_INVALID_ARGUMENT, "block 24 does not exist");
    uint32_t last = 23;
    o.export_feat_layers = &last;
    CHECK_OK("metric inference (feature block 23)", da3_infer(model, g_views, 1, &o, &r));
    if (r) {
        float e[12], scale;
        uint32_t layer = 0;
        size_t shape[4] = {0};
        CHECK(da3_result_has_sky(r) && !da3_result_has_confidence(r) &&
                  !da3_result_has_cameras(r) && !da3_result_is_metric(r) &&
                  da3_result_scale_factor(r, &scale) == DA3_ERR_NOT_AVAILABLE,
              "metric result: sky, no confidence, no cameras, not nested-metric");
        CHECK_STATUS("metric result: extrinsics", da3_result_extrinsics(r, 0, e),
                     DA3_ERR_NOT_AVAILABLE, "cameras");
        CHECK(da3_result_confidence(r, 0) == NULL, "metric result: confidence is NULL");
        CHECK(da3_result_feature_info(r, 0, &layer, shape) == DA3_OK && layer == 23 &&
                  shape[3] == 1024,
              "metric result: block 23 features, ViT-L width");
    }
    da3_result_free(r);
    da3_free(model);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    make_scene();
    make_rig();
    static const struct {
        const char *group, *variable;
        void (*run)(const char *);
    } groups[] = {{"any-view", "DA3_TEST_CHECKPOINT", test_any_view},
                  {"nested", "DA3_TEST_NESTED_CHECKPOINT", test_nested},
                  {"nested all-sky", "DA3_TEST_NESTED_ALLSKY_CHECKPOINT", test_nested_allsky},
                  {"metric", "DA3_TEST_METRIC_CHECKPOINT", test_metric}};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        printf("== %s\n", groups[i].group);
        const char *path = getenv(groups[i].variable);
        if (path != NULL && *path != '\0') {
            groups[i].run(path);
        } else {
            check_skip("group '%s': set %s", groups[i].group, groups[i].variable);
        }
    }
    return check_summary();
}
