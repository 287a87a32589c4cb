// ref_corrupt.h: plain-C reference of the corruption suite (src/data/corrupt.c).
//
// Written from the CIFAR-10-C parameter tables (its own copy) and docs/corruptions.md, in
// double precision with the C library's exp/log/cos/sin; the randomness is the same PCG
// hash as the shaders, so a GPU result can be compared pixel by pixel. jpeg_compression is
// integer fixed-point arithmetic on both sides (bit-exact by design).
// Layout: uint8 (N, C, H, W), dense, x[((n*C + c)*H + y)*W + x]. Types are numbered as enum
// vka_corruption (0 gaussian_noise .. 16 saturate).
#ifndef VKANCHOR_REF_CORRUPT_H
#define VKANCHOR_REF_CORRUPT_H

#include <stdint.h>

#define REF_CORRUPT_COUNT 17

// CIFAR-10-C's name of type t, or NULL.
const char *ref_corrupt_name(int t);
// out = corruption t at severity sev (1..5) of in, for seed and the dataset index of image 0.
void ref_corrupt(uint8_t *out, const uint8_t *in, int N, int C, int H, int W, int t, int sev, uint32_t seed,
                 uint32_t first_image);
// The integer JPEG path on one 8x8 block of samples (in place), at `quality` (1..100);
// chroma selects the chroma table. Exposed so a test can check it against a double DCT.
void ref_jpeg_block(int s[64], int quality, int chroma);

#endif
