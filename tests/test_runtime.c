/* The Vulkan runtime: device selection, arenas, transfers, kernels' interface
 * checks, command buffers, timestamps and the planned limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "vk/env_switches.h"
#include "vk/vk_internal.h"
#include "probe_axpy.spv.h"

static char last_error[1024];
static void keep_error(void *user, vka_log_level level, const char *message)
{
    (void)user;
    if (level == VKA_LOG_ERROR) snprintf(last_error, sizeof last_error, "%s", message);
}

static void default_device_is_the_highest_ranked_type(void **state)
{
    (void)state;
    vka_device_info *list;
    uint32_t n;
    TEST_OK(vka_device_list(NULL, NULL, &list, &n));
    assert_true(n >= 1);
    vka_context *ctx;
    TEST_OK(vka_context_create(&(vka_context_desc){.validation = VKA_VALIDATION_ON}, &ctx));
    const vka_device_info *chosen = vka_context_device(ctx);
    static const int rank[] = {[VKA_DEVICE_OTHER] = 0, [VKA_DEVICE_CPU] = 1, [VKA_DEVICE_VIRTUAL_GPU] = 2,
                               [VKA_DEVICE_INTEGRATED_GPU] = 3, [VKA_DEVICE_DISCRETE_GPU] = 4};
    for (uint32_t i = 0; i < n; i++) assert_true(rank[list[i].type] <= rank[chosen->type]);
    assert_true(strlen(chosen->name) > 0);
    vka_device_list_free(list);
    test_context_finish(ctx);
}

/* The choice itself on made-up lists (the CI machine has one device, where a broken ranking or
 * index parse would still pick it). */
static void device_pick_ranks_types_and_reads_indices_and_names(void **state)
{
    (void)state;
    vka_device_info d[4] = {0};
    snprintf(d[0].name, sizeof d[0].name, "llvmpipe (LLVM 15.0.6, 256 bits)"), d[0].type = VKA_DEVICE_CPU;
    snprintf(d[1].name, sizeof d[1].name, "Intel(R) Graphics 1"), d[1].type = VKA_DEVICE_INTEGRATED_GPU;
    snprintf(d[2].name, sizeof d[2].name, "NVIDIA H200"), d[2].type = VKA_DEVICE_DISCRETE_GPU;
    snprintf(d[3].name, sizeof d[3].name, "AMD Radeon 2"), d[3].type = VKA_DEVICE_DISCRETE_GPU;
    assert_int_equal(vka_device_pick(d, 4, NULL), 2);  /* the first discrete GPU */
    assert_int_equal(vka_device_pick(d, 4, ""), 2);
    assert_int_equal(vka_device_pick(d, 2, NULL), 1);  /* integrated over CPU */
    assert_int_equal(vka_device_pick(d, 1, NULL), 0);
    assert_int_equal(vka_device_pick(d, 4, "1"), 1);   /* digits are an index, though "1" is in names */
    assert_int_equal(vka_device_pick(d, 4, "3"), 3);
    assert_int_equal(vka_device_pick(d, 4, "4"), -1);
    assert_int_equal(vka_device_pick(d, 1, "1"), -1);
    assert_int_equal(vka_device_pick(d, 4, "radeon"), 3);  /* case-blind substring */
    assert_int_equal(vka_device_pick(d, 4, "LLVM 15"), 0);
    assert_int_equal(vka_device_pick(d, 4, "h2"), 2);
    assert_int_equal(vka_device_pick(d, 4, "mali"), -1);
    assert_int_equal(vka_device_pick(d, 0, NULL), -1);
}

static void device_is_selected_by_index_and_by_name_substring(void **state)
{
    (void)state;
    vka_device_info *list;
    uint32_t n;
    TEST_OK(vka_device_list(NULL, NULL, &list, &n));
    vka_context *ctx;
    TEST_OK(vka_context_create(&(vka_context_desc){.device = "0", .validation = VKA_VALIDATION_ON}, &ctx));
    assert_string_equal(vka_context_device(ctx)->name, list[0].name);
    test_context_finish(ctx);
    /* Part of the name from its first letter on, each letter's case flipped: a case-blind substring. */
    char part[4] = {0};
    const char *from = list[0].name;
    while (*from && !((*from >= 'a' && *from <= 'z') || (*from >= 'A' && *from <= 'Z'))) from++;
    assert_true(*from); /* a name with no letter would not test the case */
    memcpy(part, from, strlen(from) >= 3 ? 3 : strlen(from));
    for (char *p = part; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    TEST_OK(vka_context_create(&(vka_context_desc){.device = part, .validation = VKA_VALIDATION_ON}, &ctx));
    assert_non_null(strstr(list[0].name, vka_context_device(ctx)->name) ? "" : NULL);
    test_context_finish(ctx);
    vka_device_list_free(list);
}

static void unknown_device_name_fails_and_lists_the_devices(void **state)
{
    (void)state;
    vka_context *ctx = NULL;
    last_error[0] = 0;
    vka_result rc = vka_context_create(&(vka_context_desc){.device = "no-such-gpu-xyz", .log = keep_error}, &ctx);
    assert_int_equal(rc, VKA_ERROR_DEVICE_NOT_FOUND);
    assert_null(ctx);
    assert_non_null(strstr(last_error, "no-such-gpu-xyz"));
    assert_non_null(strstr(last_error, "0: "));
    rc = vka_context_create(&(vka_context_desc){.device = "4096", .log = keep_error}, &ctx);
    assert_int_equal(rc, VKA_ERROR_DEVICE_NOT_FOUND);
}

static char warnings[4096];
static void keep_warnings(void *user, vka_log_level level, const char *message)
{
    (void)user;
    if (level == VKA_LOG_WARNING) strncat(warnings, message, sizeof warnings - strlen(warnings) - 2), strcat(warnings, "\n");
}

/* A VKANCHOR_* switch set to a value it does not take, or a name no switch has, is said when a
 * context is made (not silently ignored); a good value is not. And every switch the sources read
 * is in the table that check uses. */
static void environment_switches_with_unknown_names_or_values_are_warned_about(void **state)
{
    (void)state;
    setenv("VKANCHOR_CONV", "foo", 1);
    setenv("VKANCHOR_TILED_BLOCK", "3x3", 1);
    setenv("VKANCHOR_CONV_PACKD", "0", 1); /* a typo */
    setenv("VKANCHOR_TEXEL", "1", 1);
    warnings[0] = 0;
    vka_context *ctx;
    vka_result rc = vka_context_create(&(vka_context_desc){.log = keep_warnings}, &ctx);
    /* (Unset before the check: a failure must not leave them to the tests after this one.) */
    unsetenv("VKANCHOR_CONV"), unsetenv("VKANCHOR_TILED_BLOCK"), unsetenv("VKANCHOR_CONV_PACKD"), unsetenv("VKANCHOR_TEXEL");
    TEST_OK(rc);
    vka_context_destroy(ctx);
    if (!strstr(warnings, "VKANCHOR_CONV=foo") || !strstr(warnings, "VKANCHOR_TILED_BLOCK=3x3") ||
        !strstr(warnings, "VKANCHOR_CONV_PACKD is set but no") || strstr(warnings, "VKANCHOR_TEXEL"))
        fail_msg("warnings: %s", warnings);
    /* The names the sources read, from the sources themselves. */
    FILE *p = popen("grep -rhoE '(getenv|vka_switch_off)\\(\"VKANCHOR_[A-Z0-9_]+' " VKA_SOURCE_DIR "/src", "r");
    assert_non_null(p);
    char line[256];
    int names = 0;
    while (fgets(line, sizeof line, p)) {
        char *name = strstr(line, "VKANCHOR_");
        name[strcspn(name, "\"\n")] = 0;
        if (!vka_env_switch_known(name)) fail_msg("%s is read in src/ but missing from src/vk/env_switches.c", name);
        names++;
    }
    pclose(p);
    assert_true(names >= 20);
    /* ... and the ones the scripts read (a user sets them in the same environment). */
    p = popen("grep -rhoE '[$][{]VKANCHOR_[A-Z0-9_]+' " VKA_SOURCE_DIR "/scripts", "r");
    assert_non_null(p);
    while (fgets(line, sizeof line, p)) {
        char *name = strstr(line, "VKANCHOR_");
        name[strcspn(name, "\n")] = 0;
        if (!vka_env_switch_known(name)) fail_msg("%s is read in scripts/ but missing from src/vk/env_switches.c", name);
    }
    pclose(p);
}

static void arena_rejects_a_zero_size_tensor(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "zero"}, &arena));
    vka_tensor t;
    assert_int_equal(vka_arena_alloc(arena, 0, &t), VKA_ERROR_INVALID_ARGUMENT);
    assert_non_null(strstr(vka_context_last_error(ctx), "0 bytes"));
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void arena_reports_a_tensor_over_the_allocation_limit_with_its_size(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "huge"}, &arena));
    vka_tensor t;
    uint64_t too_big = vka_context_limits(ctx)->max_memory_allocation_size + 1;
    assert_int_equal(vka_arena_alloc(arena, too_big, &t), VKA_ERROR_OUT_OF_DEVICE_MEMORY);
    assert_non_null(strstr(vka_context_last_error(ctx), "'huge'"));
    assert_non_null(strstr(vka_context_last_error(ctx), "MiB"));
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void arena_aligns_tensors_and_spans_blocks(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "small", .block_size = 4096}, &arena));
    const vka_limits *l = &vka_context_device(ctx)->limits;
    vka_tensor t[10];
    for (int i = 0; i < 10; i++) {
        TEST_OK(vka_arena_alloc(arena, 1000 + 4 * i, &t[i]));
        assert_int_equal(t[i].offset % l->min_storage_buffer_offset_alignment, 0);
        assert_int_equal(t[i].offset % l->min_texel_buffer_offset_alignment, 0);
        assert_true(t[i].offset + t[i].size <= 4096);
    }
    assert_true(vka_arena_bytes(arena) >= 3 * 4096); /* 10 x ~1 KiB cannot fit one 4 KiB block */
    /* Every tensor keeps its own bytes. */
    for (int i = 0; i < 10; i++) {
        uint32_t words[250];
        for (int j = 0; j < 250; j++) words[j] = (uint32_t)(i * 1000 + j);
        TEST_OK(vka_upload(ctx, t[i], 0, words, sizeof words));
    }
    for (int i = 0; i < 10; i++) {
        uint32_t words[250];
        TEST_OK(vka_download(ctx, t[i], 0, words, sizeof words));
        for (int j = 0; j < 250; j++) assert_int_equal(words[j], (uint32_t)(i * 1000 + j));
    }
    /* A tensor larger than a block gets a block of its own. */
    vka_tensor big;
    TEST_OK(vka_arena_alloc(arena, 10000, &big));
    assert_int_equal(big.offset, 0);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static void upload_and_download_respect_offsets_and_guards(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "io"}, &arena));
    test_guarded g = test_alloc_guarded(ctx, arena, 4000);
    TEST_OK(vka_fill(ctx, g.t, 0));
    uint8_t src[100], dst[4000];
    for (int i = 0; i < 100; i++) src[i] = (uint8_t)(i + 1);
    TEST_OK(vka_upload(ctx, g.t, 1234, src, 100));
    TEST_OK(vka_download(ctx, g.t, 0, dst, 4000));
    for (int i = 0; i < 4000; i++) assert_int_equal(dst[i], i >= 1234 && i < 1334 ? i - 1233 : 0);
    assert_int_equal(vka_upload(ctx, g.t, 3990, src, 100), VKA_ERROR_INVALID_ARGUMENT);
    test_check_guard(ctx, g);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

static vka_kernel_desc axpy_desc(void)
{
    return (vka_kernel_desc){
        .name = "axpy_probe", .spirv = vka_spv_probe_axpy, .spirv_bytes = sizeof vka_spv_probe_axpy, .num_bindings = 2,
        .bindings = {VKA_BIND_STORAGE, VKA_BIND_STORAGE}, .push_bytes = 8, .local_size = {64},
    };
}

static void kernel_rejects_push_constants_over_the_device_limit(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_kernel *k = NULL;
    vka_kernel_desc d = axpy_desc();
    d.push_bytes = vka_context_limits(ctx)->max_push_constants_bytes + 4;
    assert_int_equal(vka_kernel_create(ctx, &d, &k), VKA_ERROR_LIMIT_EXCEEDED);
    assert_null(k);
    assert_non_null(strstr(vka_context_last_error(ctx), "push constants"));
    test_context_finish(ctx);
}

static void kernel_rejects_a_c_struct_that_differs_from_the_shader(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_kernel *k = NULL;
    vka_kernel_desc d = axpy_desc();
    d.push_bytes = 12;
    assert_int_equal(vka_kernel_create(ctx, &d, &k), VKA_ERROR_SHADER_MISMATCH);
    d = axpy_desc();
    d.num_bindings = 3;
    assert_int_equal(vka_kernel_create(ctx, &d, &k), VKA_ERROR_SHADER_MISMATCH);
    d = axpy_desc();
    d.bindings[0] = VKA_BIND_TEXEL_R32F;
    assert_int_equal(vka_kernel_create(ctx, &d, &k), VKA_ERROR_SHADER_MISMATCH);
    d = axpy_desc();
    TEST_OK(vka_kernel_create(ctx, &d, &k));
    vka_kernel_destroy(ctx, k);
    test_context_finish(ctx);
}

static void kernel_rejects_a_workgroup_over_the_planned_limit(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_kernel *k = NULL;
    vka_kernel_desc d = axpy_desc();
    d.local_size[0] = vka_context_limits(ctx)->max_workgroup_invocations * 2;
    assert_int_equal(vka_kernel_create(ctx, &d, &k), VKA_ERROR_LIMIT_EXCEEDED);
    d = axpy_desc();
    d.shared_bytes = vka_context_limits(ctx)->max_shared_memory_bytes + 1;
    assert_int_equal(vka_kernel_create(ctx, &d, &k), VKA_ERROR_LIMIT_EXCEEDED);
    test_context_finish(ctx);
}

/* Kernels are found by their whole desc: an equal desc (whatever its name's pointer) gives the
 * same pipeline, one that differs in its name, workgroup size or specialization values a new
 * one, and all stay found after the table grows; a failed build leaves nothing behind. */
static void kernel_cache_finds_kernels_by_their_whole_desc(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_kernel_desc d = axpy_desc();
    vka_kernel *first, *k;
    TEST_OK(vka_kernel_get(ctx, &d, &first));
    char same_name[] = "axpy_probe";
    vka_kernel_desc copy = d;
    copy.name = same_name;
    TEST_OK(vka_kernel_get(ctx, &copy, &k));
    assert_ptr_equal(k, first);
    copy.name = "axpy_probe_renamed";
    TEST_OK(vka_kernel_get(ctx, &copy, &k));
    assert_ptr_not_equal(k, first);
    copy = d;
    copy.num_spec = 1, copy.spec[0] = 7; /* a constant id the shader lacks: a new pipeline all the same */
    TEST_OK(vka_kernel_get(ctx, &copy, &k));
    assert_ptr_not_equal(k, first);
    assert_int_equal(ctx->kernels.count, 3);
    /* 128 workgroup sizes (the spec minimum of invocations), 64 among them: past the first growth. */
    vka_kernel *by_size[128];
    for (uint32_t i = 0; i < 128; i++) {
        d.local_size[0] = i + 1;
        TEST_OK(vka_kernel_get(ctx, &d, &by_size[i]));
        assert_int_equal(by_size[i]->desc.local_size[0], i + 1);
    }
    assert_ptr_equal(by_size[63], first);
    assert_int_equal(ctx->kernels.count, 3 + 127);
    for (uint32_t i = 0; i < 128; i++) {
        d.local_size[0] = i + 1;
        TEST_OK(vka_kernel_get(ctx, &d, &k));
        assert_ptr_equal(k, by_size[i]);
    }
    assert_true(vka_kernel_built(ctx, "axpy_probe_renamed", -1, 0));
    assert_true(vka_kernel_built(ctx, "axpy_probe", 0, 7));
    assert_false(vka_kernel_built(ctx, "axpy_probe", 0, 8));
    assert_false(vka_kernel_built(ctx, "axpy", -1, 0));
    d = axpy_desc();
    d.push_bytes = 12; /* the shader's block is 8 bytes */
    assert_int_equal(vka_kernel_get(ctx, &d, &k), VKA_ERROR_SHADER_MISMATCH);
    assert_int_equal(ctx->kernels.count, 3 + 127);
    test_context_finish(ctx);
}

static void limits_min_plans_with_the_spec_minimums(void **state)
{
    (void)state;
    const char *old = getenv("VKANCHOR_LIMITS");
    char *saved = old ? strdup(old) : NULL;
    setenv("VKANCHOR_LIMITS", "min", 1);
    vka_context *ctx = test_context();
    if (saved) setenv("VKANCHOR_LIMITS", saved, 1); else unsetenv("VKANCHOR_LIMITS");
    free(saved);
    const vka_limits *l = vka_context_limits(ctx);
    assert_true(l->max_workgroup_invocations <= 128);
    assert_true(l->max_shared_memory_bytes <= 16384);
    assert_true(l->max_push_constants_bytes <= 128);
    assert_true(l->max_storage_buffer_range <= (1u << 27));
    /* The device itself still reports its own limits. */
    assert_true(vka_context_device(ctx)->limits.max_workgroup_invocations >= l->max_workgroup_invocations);
    test_context_finish(ctx);
}

static void recorded_buffer_can_be_submitted_again_and_is_timed(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "resubmit"}, &arena));
    vka_tensor x, y;
    TEST_OK(vka_arena_alloc(arena, 64 * 4, &x));
    TEST_OK(vka_arena_alloc(arena, 64 * 4, &y));
    float ones[64], out[64];
    for (int i = 0; i < 64; i++) ones[i] = 1.0f;
    TEST_OK(vka_upload(ctx, x, 0, ones, sizeof ones));
    TEST_OK(vka_fill(ctx, y, 0));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){.timing = 1}, &cmd));
    TEST_OK(vka_axpy(cmd, 2.0f, x, y, 64));
    for (int i = 0; i < 3; i++) {
        TEST_OK(vka_cmd_submit(cmd));
        TEST_OK(vka_cmd_wait(cmd));
    }
    TEST_OK(vka_download(ctx, y, 0, out, sizeof out));
    for (int i = 0; i < 64; i++) assert_true(out[i] == 6.0f);
    vka_timing t[4];
    uint32_t n = vka_cmd_timings(cmd, t, 4);
    if (vka_context_device(ctx)->features.timestamps) {
        assert_int_equal(n, 1);
        assert_string_equal(t[0].label, "axpy");
        assert_true(t[0].ms >= 0.0 && t[0].ms < 10000.0);
    } else {
        assert_int_equal(n, 0);
    }
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

/* y = 2x + y over n floats, submitted and waited for. */
static void run_axpy(vka_cmd *cmd, vka_tensor x, vka_tensor y, uint64_t n)
{
    TEST_OK(vka_cmd_reset(cmd));
    TEST_OK(vka_axpy(cmd, 2.0f, x, y, n));
    TEST_OK(vka_cmd_submit(cmd));
    TEST_OK(vka_cmd_wait(cmd));
}

static void expect_all(vka_context *ctx, vka_tensor t, float want)
{
    float got[64];
    TEST_OK(vka_download(ctx, t, 0, got, sizeof got));
    for (int i = 0; i < 64; i++)
        if (got[i] != want) fail_msg("element %d: %g, expected %g", i, got[i], want);
}

/* A cmd makes a dispatch's descriptor set once and finds it again in the next recordings;
 * other tensors (another slice, or a new arena where a destroyed one was: perhaps the same
 * buffer handle) get sets of their own, and a reset drops them all at the cache's limit.
 * The results stay right throughout (and the validation layers, on in the tests, stay quiet). */
static void descriptor_sets_are_made_once_and_never_outlive_their_tensors(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    float ones[64];
    for (int i = 0; i < 64; i++) ones[i] = 1.0f;
    vka_arena *first;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "sets"}, &first));
    vka_tensor x, y, y2;
    TEST_OK(vka_arena_alloc(first, 64 * 4, &x));
    TEST_OK(vka_arena_alloc(first, 64 * 4, &y));
    TEST_OK(vka_arena_alloc(first, 64 * 4, &y2));
    TEST_OK(vka_upload(ctx, x, 0, ones, sizeof ones));
    TEST_OK(vka_fill(ctx, y, 0));
    TEST_OK(vka_fill(ctx, y2, 0));
    for (int step = 1; step <= 3; step++) { /* the same dispatch recorded three times: one set */
        run_axpy(cmd, x, y, 64);
        assert_int_equal(vka_cmd_cached_sets(cmd), 1);
        expect_all(ctx, y, 2.0f * (float)step);
    }
    run_axpy(cmd, x, y2, 64); /* another output tensor: a second set */
    assert_int_equal(vka_cmd_cached_sets(cmd), 2);
    expect_all(ctx, y2, 2.0f);
    expect_all(ctx, y, 6.0f);
    vka_arena_destroy(first);

    vka_arena *second; /* the same sizes again: the driver may hand out the same handles */
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "sets again"}, &second));
    vka_tensor x3, y3;
    TEST_OK(vka_arena_alloc(second, 64 * 4, &x3));
    TEST_OK(vka_arena_alloc(second, 64 * 4, &y3));
    float threes[64];
    for (int i = 0; i < 64; i++) threes[i] = 3.0f;
    TEST_OK(vka_upload(ctx, x3, 0, threes, sizeof threes));
    TEST_OK(vka_fill(ctx, y3, 0));
    run_axpy(cmd, x3, y3, 64);
    assert_int_equal(vka_cmd_cached_sets(cmd), 3);
    expect_all(ctx, y3, 6.0f);

    /* The limit: one recording binding VKA_CMD_SET_CACHE_MAX distinct slices of a zeroed buffer. */
    uint64_t stride = ctx->info.limits.min_storage_buffer_offset_alignment;
    if (stride < 4) stride = 4;
    vka_tensor many;
    TEST_OK(vka_arena_alloc(second, stride * VKA_CMD_SET_CACHE_MAX, &many));
    TEST_OK(vka_fill(ctx, many, 0));
    TEST_OK(vka_cmd_reset(cmd));
    for (uint32_t i = 0; i < VKA_CMD_SET_CACHE_MAX; i++) {
        vka_tensor s = vka_tensor_slice(many, i * stride, 4);
        TEST_OK(vka_axpy(cmd, 2.0f, s, s, 1));
    }
    uint32_t kept = vka_cmd_cached_sets(cmd);
    assert_true(kept >= VKA_CMD_SET_CACHE_MAX);
    for (uint32_t i = 0; i < VKA_CMD_SET_CACHE_MAX; i += 97) { /* found again after the table grew */
        vka_tensor s = vka_tensor_slice(many, i * stride, 4);
        TEST_OK(vka_axpy(cmd, 2.0f, s, s, 1));
    }
    assert_int_equal(vka_cmd_cached_sets(cmd), kept);
    TEST_OK(vka_cmd_submit(cmd));
    TEST_OK(vka_cmd_wait(cmd));
    run_axpy(cmd, x3, y3, 64); /* the reset dropped them all: this dispatch's set is new */
    assert_int_equal(vka_cmd_cached_sets(cmd), 1);
    expect_all(ctx, y3, 12.0f);
    vka_cmd_destroy(cmd);
    vka_arena_destroy(second);
    test_context_finish(ctx);
}

static void an_op_error_stops_the_submit(void **state)
{
    (void)state;
    vka_context *ctx = test_context();
    vka_arena *arena;
    TEST_OK(vka_arena_create(ctx, &(vka_arena_desc){.name = "bad"}, &arena));
    vka_tensor a;
    TEST_OK(vka_arena_alloc(arena, 16, &a));
    vka_cmd *cmd;
    TEST_OK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &cmd));
    vka_matmul_desc d = {.m = 4, .n = 4, .k = 4};
    assert_int_equal(vka_matmul(cmd, a, a, a, &d), VKA_ERROR_INVALID_ARGUMENT);
    assert_non_null(strstr(vka_context_last_error(ctx), "matmul"));
    assert_int_equal(vka_cmd_submit(cmd), VKA_ERROR_INVALID_ARGUMENT);
    TEST_OK(vka_cmd_reset(cmd));
    vka_cmd_destroy(cmd);
    vka_arena_destroy(arena);
    test_context_finish(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_device_is_the_highest_ranked_type),
        cmocka_unit_test(device_pick_ranks_types_and_reads_indices_and_names),
        cmocka_unit_test(device_is_selected_by_index_and_by_name_substring),
        cmocka_unit_test(unknown_device_name_fails_and_lists_the_devices),
        cmocka_unit_test(arena_rejects_a_zero_size_tensor),
        cmocka_unit_test(arena_reports_a_tensor_over_the_allocation_limit_with_its_size),
        cmocka_unit_test(arena_aligns_tensors_and_spans_blocks),
        cmocka_unit_test(upload_and_download_respect_offsets_and_guards),
        cmocka_unit_test(kernel_rejects_push_constants_over_the_device_limit),
        cmocka_unit_test(kernel_rejects_a_c_struct_that_differs_from_the_shader),
        cmocka_unit_test(kernel_rejects_a_workgroup_over_the_planned_limit),
        cmocka_unit_test(kernel_cache_finds_kernels_by_their_whole_desc),
        cmocka_unit_test(limits_min_plans_with_the_spec_minimums),
        cmocka_unit_test(recorded_buffer_can_be_submitted_again_and_is_timed),
        cmocka_unit_test(an_op_error_stops_the_submit),
        cmocka_unit_test(descriptor_sets_are_made_once_and_never_outlive_their_tensors),
        cmocka_unit_test(environment_switches_with_unknown_names_or_values_are_warned_about),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
