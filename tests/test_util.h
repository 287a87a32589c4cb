/* Helpers shared by the GPU tests: a validated context, random data, canaries,
 * and the normalized error sum (a-b)^2 / sum b^2. */
#ifndef VKA_TEST_UTIL_H
#define VKA_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nn/packed_layout.h"
#include "vkanchor.h"

/* Creates a context on the default (or VKANCHOR_TEST_DEVICE) device with the
 * validation layers on. Fails the test, never skips, when there is none. */
vka_context *test_context(void);
/* The same with the device's cooperative matrices as the library would use them (not
 * turned off by VKANCHOR_COOPMAT=0, which test_context sets unless the environment says). */
vka_context *test_context_coop(void);
/* Fails the test if the validation layers said anything, then destroys. */
void test_context_finish(vka_context *ctx);

/* A test context with one arena and one command buffer; close finishes the context. */
typedef struct test_rig {
    vka_context *ctx;
    vka_arena *arena;
    vka_cmd *cmd;
} test_rig;
test_rig test_rig_open(const char *arena_name);
void test_rig_close(test_rig *r);

/* Deterministic xorshift64* stream. */
typedef struct test_rng { uint64_t s; } test_rng;
float test_uniform(test_rng *r, float lo, float hi);
void test_fill_uniform(test_rng *r, float *x, size_t n, float lo, float hi);

/* A tensor followed by guard words: kernels must never write past `bytes`. */
typedef struct test_guarded {
    vka_tensor t;       /* the usable range */
    vka_tensor guard;   /* TEST_GUARD_BYTES after it */
} test_guarded;
#define TEST_GUARD_BYTES 256
test_guarded test_alloc_guarded(vka_context *ctx, vka_arena *arena, uint64_t bytes);
void test_check_guard(vka_context *ctx, test_guarded g);

/* sum (a-b)^2 / sum b^2 over n values (b is the reference); 0 when both are 0. */
double test_normalized_error(const float *a, const double *b, size_t n);

#define TEST_OK(expr)                                                                        \
    do {                                                                                     \
        vka_result r_ = (expr);                                                              \
        if (r_ != VKA_SUCCESS) fail_msg("%s -> %s", #expr, vka_result_string(r_));           \
    } while (0)


/* Checks that an op call was refused as INVALID_ARGUMENT, named `op` in its error,
 * and left the cmd refusing to submit (nothing dispatched); then resets the cmd. */
void test_expect_rejected(vka_context *ctx, vka_cmd *cmd, vka_result rc, const char *op);

/* ---- training-test helpers ---------------------------------------------------- */

/* Makes a temporary directory (template /tmp/vka_<name>_XXXXXX) holding data/, a
 * tiny IDX dataset of size x size images: `train` and `test` images, labels i % 10,
 * class c lighting up row block c. Writes the directory into dir (>= 256 bytes);
 * returns 0 on success. */
int test_make_tiny_dataset(char *dir, const char *name, uint32_t train, uint32_t test, uint32_t size);
/* rm -rf of a directory made by test_make_tiny_dataset. */
int test_remove_dir(const char *dir);

/* Runs `exe args` through the shell, stdout discarded; returns its exit status (-1 if it
 * did not exit) with its stderr in err (n bytes, via dir/stderr.txt). */
int test_run_cli(const char *exe, const char *dir, const char *args, char *err, size_t n);

/* Float index of element (n, c, h, w) in a packed layout (src/nn/packed_layout.h), and the
 * floats of `batch` images of it. */
size_t test_packed_index(const vka_packed_layout *l, uint32_t n, uint32_t c, uint32_t h, uint32_t w);
size_t test_packed_floats(const vka_packed_layout *l, uint32_t batch);

/* A rejected op call in a context where every call so far was rejected: INVALID_ARGUMENT from
 * the call and on the cmd, the message names op, and the context built no kernel. */
void test_expect_rejected_before_kernels(vka_context *ctx, vka_cmd *cmd, vka_result rc, const char *op);

/* ---- op-test helpers -------------------------------------------------------- */

/* A new tensor of n floats holding `data` (NULL: zeros). */
vka_tensor test_tensor(vka_context *ctx, vka_arena *arena, const float *data, size_t n);
/* A new tensor of n int32 values. */
vka_tensor test_tensor_i32(vka_context *ctx, vka_arena *arena, const int32_t *data, size_t n);
/* Downloads n floats into a malloc'd array. */
float *test_read(vka_context *ctx, vka_tensor t, size_t n);
/* A malloc'd double copy of n floats. */
double *test_to_double(const float *x, size_t n);
/* Submits, waits, and fails the test on any error. */
void test_run(vka_cmd *cmd);
/* Fails with `what` and the error unless sum (gpu-ref)^2 / sum ref^2 <= tol. */
void test_expect_close(const char *what, const float *gpu, const double *ref, size_t n, double tol);

#endif
