#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vk/vk_internal.h"

/* Validation messages seen by test_log, over a context's whole life: its destruction too, when
 * the layers report objects never destroyed (the context's own count is gone by then). */
static uint32_t validation_seen;

static void test_log(void *user, vka_log_level level, const char *message)
{
    (void)user;
    /* Validation messages and errors are shown so a failing test explains itself. */
    if (level == VKA_LOG_VALIDATION) validation_seen++;
    if (level >= VKA_LOG_WARNING) fprintf(stderr, "  [vkanchor %s] %s\n", level == VKA_LOG_VALIDATION ? "validation" : level == VKA_LOG_ERROR ? "error" : "warning", message);
}

static vka_context *create_context(void)
{
    vka_context *ctx = NULL;
    vka_result rc = vka_context_create(&(vka_context_desc){.device = getenv("VKANCHOR_TEST_DEVICE"),
                                                           .validation = VKA_VALIDATION_ON,
                                                           .log = test_log},
                                       &ctx);
    if (rc != VKA_SUCCESS) fail_msg("no Vulkan context (%s): the GPU tests need a device, lavapipe at least",
                                    vka_result_string(rc));
    return ctx;
}

vka_context *test_context(void)
{
    /* The op and golden tests compare against fp32 references at fp32 tolerances: the conv
     * passes on cooperative matrices (fp16 inputs) have their own test (test_context_coop). */
    setenv("VKANCHOR_COOPMAT", "0", 0);
    return create_context();
}

vka_context *test_context_coop(void)
{
    const char *was = getenv("VKANCHOR_COOPMAT");
    char keep[16] = "";
    if (was) snprintf(keep, sizeof keep, "%s", was);
    unsetenv("VKANCHOR_COOPMAT");
    vka_context *ctx = create_context();
    if (was) setenv("VKANCHOR_COOPMAT", keep, 1);
    return ctx;
}

void test_context_finish(vka_context *ctx)
{
    uint32_t n = vka_context_validation_messages(ctx), before = validation_seen;
    vka_context_destroy(ctx);
    if (n) fail_msg("the validation layers reported %u message(s) (printed above)", n);
    if (validation_seen != before)
        fail_msg("the validation layers reported %u message(s) while the context was destroyed (printed above)",
                 validation_seen - before);
}

test_rig test_rig_open(const char *arena_name)
{
    test_rig r = {test_context(), NULL, NULL};
    TEST_OK(vka_arena_create(r.ctx, &(vka_arena_desc){.name = arena_name}, &r.arena));
    TEST_OK(vka_cmd_create(r.ctx, &(vka_cmd_desc){0}, &r.cmd));
    return r;
}

void test_rig_close(test_rig *r)
{
    vka_cmd_destroy(r->cmd);
    vka_arena_destroy(r->arena);
    test_context_finish(r->ctx);
}

static uint64_t next(test_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

float test_uniform(test_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((next(r) >> 40) * (1.0 / 16777216.0));
}

void test_fill_uniform(test_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = test_uniform(r, lo, hi);
}

#define GUARD_WORD 0xC0FFEE11u

test_guarded test_alloc_guarded(vka_context *ctx, vka_arena *arena, uint64_t bytes)
{
    vka_tensor all;
    TEST_OK(vka_arena_alloc(arena, bytes + TEST_GUARD_BYTES, &all));
    test_guarded g = {vka_tensor_slice(all, 0, bytes), vka_tensor_slice(all, bytes, TEST_GUARD_BYTES)};
    uint32_t words[TEST_GUARD_BYTES / 4];
    for (size_t i = 0; i < TEST_GUARD_BYTES / 4; i++) words[i] = GUARD_WORD;
    TEST_OK(vka_upload(ctx, g.guard, 0, words, TEST_GUARD_BYTES));
    return g;
}

void test_check_guard(vka_context *ctx, test_guarded g)
{
    uint32_t words[TEST_GUARD_BYTES / 4];
    TEST_OK(vka_download(ctx, g.guard, 0, words, TEST_GUARD_BYTES));
    for (size_t i = 0; i < TEST_GUARD_BYTES / 4; i++)
        if (words[i] != GUARD_WORD) fail_msg("guard word %zu after the output was overwritten (0x%08x)", i, words[i]);
}

double test_normalized_error(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        if (isnan(a[i])) return INFINITY;
        num += d * d;
        den += b[i] * b[i];
    }
    if (den == 0) return num;
    return num / den;
}

vka_tensor test_tensor(vka_context *ctx, vka_arena *arena, const float *data, size_t n)
{
    vka_tensor t;
    TEST_OK(vka_arena_alloc(arena, n * 4, &t));
    if (data) TEST_OK(vka_upload(ctx, t, 0, data, n * 4));
    else TEST_OK(vka_fill(ctx, t, 0));
    return t;
}

vka_tensor test_tensor_i32(vka_context *ctx, vka_arena *arena, const int32_t *data, size_t n)
{
    vka_tensor t;
    TEST_OK(vka_arena_alloc(arena, n * 4, &t));
    TEST_OK(vka_upload(ctx, t, 0, data, n * 4));
    return t;
}

float *test_read(vka_context *ctx, vka_tensor t, size_t n)
{
    float *x = malloc(n * 4);
    TEST_OK(vka_download(ctx, t, 0, x, n * 4));
    return x;
}

double *test_to_double(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

void test_run(vka_cmd *cmd)
{
    TEST_OK(vka_cmd_submit(cmd));
    TEST_OK(vka_cmd_wait(cmd));
}

void test_expect_close(const char *what, const float *gpu, const double *ref, size_t n, double tol)
{
    double e = test_normalized_error(gpu, ref, n);
    if (!(e <= tol)) {
        size_t worst = 0;
        double wd = -1;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)gpu[i] - ref[i]);
            if (d > wd || isnan(gpu[i])) wd = d, worst = i;
        }
        fail_msg("%s: normalized error %.3g > %.3g (worst at %zu: gpu %.9g, ref %.9g)", what, e, tol, worst,
                 gpu[worst], ref[worst]);
    }
}

static int write_tiny_idx(const char *dir, const char *name, uint32_t n, int images, uint32_t sz)
{
    char path[512];
    snprintf(path, sizeof path, "%s/data/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned char h[16] = {0, 0, 8, images ? 3 : 1, n >> 24, n >> 16, n >> 8, n, 0, 0, 0, sz, 0, 0, 0, sz};
    fwrite(h, 1, images ? 16 : 8, f);
    for (uint32_t i = 0; i < n; i++) {
        if (!images) {
            fputc((int)(i % 10), f);
            continue;
        }
        for (uint32_t p = 0; p < sz * sz; p++)
            fputc((p / sz == i % 10 ? 200 : 20) + (int)((i * 7 + p * 13) % 40), f);
    }
    return fclose(f);
}

int test_make_tiny_dataset(char *dir, const char *name, uint32_t train, uint32_t test, uint32_t size)
{
    snprintf(dir, 256, "/tmp/vka_%s_XXXXXX", name);
    if (!mkdtemp(dir)) return -1;
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
    if (mkdir(data, 0755)) return -1;
    return write_tiny_idx(dir, "train-images-idx3-ubyte", train, 1, size) |
           write_tiny_idx(dir, "train-labels-idx1-ubyte", train, 0, size) |
           write_tiny_idx(dir, "t10k-images-idx3-ubyte", test, 1, size) |
           write_tiny_idx(dir, "t10k-labels-idx1-ubyte", test, 0, size);
}

int test_remove_dir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

void test_expect_rejected(vka_context *ctx, vka_cmd *cmd, vka_result rc, const char *op)
{
    assert_int_equal(rc, VKA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(vka_cmd_status(cmd), VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(vka_context_last_error(ctx), op))
        fail_msg("error does not name %s: %s", op, vka_context_last_error(ctx));
    assert_int_equal(vka_cmd_submit(cmd), VKA_ERROR_INVALID_ARGUMENT); /* nothing runs */
    TEST_OK(vka_cmd_reset(cmd));
}

int test_run_cli(const char *exe, const char *dir, const char *args, char *err, size_t n)
{
    char cmd[4096], errfile[512];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>%s", exe, args, errfile);
    int status = system(cmd);
    FILE *f = fopen(errfile, "r");
    size_t got = f ? fread(err, 1, n - 1, f) : 0;
    err[got] = 0;
    if (f) fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

size_t test_packed_index(const vka_packed_layout *l, uint32_t n, uint32_t c, uint32_t h, uint32_t w)
{
    return (((size_t)n * l->hp + l->border + h) * l->wp + l->border + w) * l->c4 * 4 + c;
}

size_t test_packed_floats(const vka_packed_layout *l, uint32_t batch)
{
    return (size_t)batch * l->hp * l->wp * l->c4 * 4;
}

void test_expect_rejected_before_kernels(vka_context *ctx, vka_cmd *cmd, vka_result rc, const char *op)
{
    assert_int_equal(rc, VKA_ERROR_INVALID_ARGUMENT);
    assert_int_equal(vka_cmd_status(cmd), VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(vka_context_last_error(ctx), op))
        fail_msg("error message '%s' does not name %s", vka_context_last_error(ctx), op);
    if (ctx->kernels.count) fail_msg("%s: %u kernels were created by rejected calls", op, ctx->kernels.count);
}
