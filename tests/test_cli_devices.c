/* `vkanchor devices` and the CLI's exit codes, run as a user would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "test_util.h"

/* Runs a command; returns its exit status and stdout (malloc'd). */
static int run(const char *command, char **out)
{
    FILE *p = popen(command, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (len + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int status = pclose(p);
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void devices_json_lists_every_device_with_its_limits(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run(VKANCHOR_EXE " devices --json", &out), 0);
    cJSON *root = cJSON_Parse(out);
    if (!root) fail_msg("not JSON: %s", out);
    cJSON *devices = cJSON_GetObjectItem(root, "devices");
    assert_true(cJSON_IsArray(devices));
    assert_true(cJSON_GetArraySize(devices) >= 1);
    cJSON *d;
    cJSON_ArrayForEach(d, devices) {
        assert_true(cJSON_IsString(cJSON_GetObjectItem(d, "name")));
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(d, "type"));
        assert_non_null(type);
        static const char *const types[] = {"discrete-gpu", "integrated-gpu", "virtual-gpu", "cpu", "other"};
        int known = 0;
        for (size_t i = 0; i < sizeof types / sizeof *types; i++) known |= strcmp(type, types[i]) == 0;
        if (!known) fail_msg("device type '%s'", type);
        assert_true(cJSON_IsString(cJSON_GetObjectItem(d, "driver")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(d, "driver_version")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(d, "api_version")));
        cJSON *heaps = cJSON_GetObjectItem(d, "memory_heaps");
        assert_true(cJSON_GetArraySize(heaps) >= 1);
        cJSON *limits = cJSON_GetObjectItem(d, "limits");
        /* Vulkan guarantees at least these. */
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(limits, "max_workgroup_invocations")) >= 128);
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(limits, "max_shared_memory_bytes")) >= 16384);
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(limits, "max_push_constants_bytes")) >= 128);
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(limits, "max_storage_buffer_range")) >= 134217728.0);
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(limits, "subgroup_size")) >= 1);
        assert_true(cJSON_IsBool(cJSON_GetObjectItem(d, "timestamps")));
        cJSON *features = cJSON_GetObjectItem(d, "features");
        const char *names[] = {"shader_float16", "storage_buffer_16bit", "subgroup_basic", "subgroup_arithmetic",
                               "subgroup_shuffle", "integer_dot_product", "cooperative_matrix"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            assert_true(cJSON_IsBool(cJSON_GetObjectItem(features, names[i])));
    }
    cJSON_Delete(root);
    free(out);
}

static void devices_table_names_each_device(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run(VKANCHOR_EXE " devices", &out), 0);
    assert_non_null(strstr(out, "device 0: "));
    assert_non_null(strstr(out, "subgroup size"));
    free(out);
}

static void bad_usage_exits_with_status_2(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run(VKANCHOR_EXE " no-such-command 2>/dev/null", &out), 2);
    free(out);
    assert_int_equal(run(VKANCHOR_EXE " devices --no-such-flag 2>/dev/null", &out), 2);
    free(out);
    assert_int_equal(run(VKANCHOR_EXE " 2>/dev/null", &out), 2);
    free(out);
    assert_int_equal(run(VKANCHOR_EXE " --help", &out), 0);
    assert_non_null(strstr(out, "devices"));
    free(out);
}

/* Standard output that cannot be written (a full disk: /dev/full) is a failure with a message,
 * not an exit status of 0 over a lost report. */
static void unwritable_standard_output_fails(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(system("test -w /dev/full"), 0); /* Linux's always-full device */
    assert_int_equal(run(VKANCHOR_EXE " devices --json 2>&1 >/dev/full", &out), 1);
    if (!strstr(out, "cannot write standard output")) fail_msg("devices --json > /dev/full: %s", out);
    free(out);
    assert_int_equal(run(VKANCHOR_EXE " --help 2>&1 >/dev/full", &out), 1);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(devices_json_lists_every_device_with_its_limits),
        cmocka_unit_test(devices_table_names_each_device),
        cmocka_unit_test(bad_usage_exits_with_status_2),
        cmocka_unit_test(unwritable_standard_output_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
