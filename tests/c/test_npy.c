/*
 * Drives the .npy writer of examples_c/da3_infer.c (included whole, its main renamed) so the
 * file format can be checked without a model: writes shapes (2,3,4), (5,) and (1,7) into the
 * directory given as argv[1]. Values: element i of each array is i * 0.5 - 1. tests/c_api.rs
 * reads the files back; this program checks that each was written.
 */
#define main da3_infer_main
#include "da3_infer.c"
#undef main

#include "check.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_npy DIR\n");
        return 2;
    }
    float values[24];
    for (int i = 0; i < 24; i++) {
        values[i] = (float)i * 0.5f - 1.0f;
    }
    size_t s3[3] = {2, 3, 4}, s1[1] = {5}, s2[2] = {1, 7};
    CHECK(save_npy(argv[1], "a.npy", values, s3, 3) == 0, "a.npy, shape (2,3,4)");
    CHECK(save_npy(argv[1], "b.npy", values, s1, 1) == 0, "b.npy, shape (5,)");
    CHECK(save_npy(argv[1], "c.npy", values, s2, 2) == 0, "c.npy, shape (1,7)");
    return check_summary();
}
