/* `vkanchor bench --quick`: it runs and reports sane fields (no timing is asserted). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "test_util.h"

static cJSON *bench(const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s bench --quick --json %s 2>/dev/null", VKANCHOR_EXE, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char text[1 << 17];
    size_t n = fread(text, 1, sizeof text - 1, p);
    text[n] = 0;
    int status = pclose(p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cJSON *o = cJSON_Parse(text);
    if (!o) fail_msg("bench printed no JSON: %s", text);
    return o;
}

static double num(cJSON *o, const char *k) { return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k)); }

static void bench_quick_reports_throughput_kernels_and_memory(void **state)
{
    (void)state;
    const char *models[] = {"--model cnn", "--model resnet20 --size 16"};
    for (int i = 0; i < 2; i++) {
        cJSON *o = bench(models[i]);
        assert_true(num(o, "images_per_s") > 0);
        assert_true(num(o, "step_ms") > 0);
        assert_true(num(o, "gpu_step_ms") > 0);
        /* Recording a step is host work inside the step's wall-clock time. */
        assert_true(num(o, "record_ms") > 0 && num(o, "record_ms") < num(o, "step_ms"));
        assert_true(num(o, "device_memory_bytes") > 1e5);
        assert_true(num(o, "inference_images_per_s") > 0);
        assert_true(num(o, "final_loss") > 0 && num(o, "final_loss") < 20);
        cJSON *conv = cJSON_GetObjectItem(o, "conv");
        assert_true(num(cJSON_GetObjectItem(conv, "conv2d_fwd"), "gflops") > 0);
        assert_true(num(cJSON_GetObjectItem(conv, "conv2d_bwd_weight"), "gflops") > 0);
        cJSON *kernels = cJSON_GetObjectItem(o, "kernels"), *k;
        assert_true(cJSON_GetArraySize(kernels) >= 8);
        assert_true(num(cJSON_GetObjectItem(o, "linear"), "gflops") > 0);
        /* The peaks the shares are stated against, measured on the device by the probes. */
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o, "peak_source")), "measured");
        assert_true(num(o, "measured_fma_gflops") > 0 && num(o, "peak_gflops") == num(o, "measured_fma_gflops"));
        assert_true(num(o, "measured_copy_gbps") > 0 && isfinite(num(o, "measured_copy_gbps")));
        double sum = 0;
        cJSON_ArrayForEach(k, kernels) {
            sum += num(k, "ms");
            /* Every kernel binds some tensor: bytes and a finite, positive GB/s, and its share of
             * the copy bandwidth is that GB/s over the measured copy rate. */
            assert_true(num(k, "bytes") > 0);
            assert_true(num(k, "gbps") > 0 && isfinite(num(k, "gbps")));
            assert_true(fabs(num(k, "bandwidth_share") * num(o, "measured_copy_gbps") - num(k, "gbps")) <=
                        1e-9 * num(k, "gbps"));
        }
        assert_true(fabs(sum - num(o, "gpu_step_ms")) < 1e-6 * sum + 1e-9);
        cJSON_Delete(o);
    }
}

/* --trace: one line per dispatch, in order, adding up to the per-kernel table. */
static void bench_trace_lists_every_dispatch_of_the_timed_step(void **state)
{
    (void)state;
    /* Into directories that do not exist yet: bench makes them (as train and eval do). */
    char top[] = "/tmp/vka_trace_XXXXXX", path[128];
    assert_non_null(mkdtemp(top));
    snprintf(path, sizeof path, "%s/a/b/trace.jsonl", top);
    char args[256];
    snprintf(args, sizeof args, "--model cnn --trace %s", path);
    cJSON *o = bench(args);
    FILE *f = fopen(path, "r");
    assert_int_equal(test_remove_dir(top), 0); /* gone whatever the checks below say; still readable through f */
    assert_non_null(f);
    char line[512];
    double sum = 0;
    int lines = 0, fwd_convs = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *e = cJSON_Parse(line);
        if (!e) fail_msg("trace line %d is not JSON: %s", lines, line);
        assert_int_equal((int)num(e, "index"), lines);
        assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(e, "kernel")));
        /* Every dispatch of a step belongs to the data, a layer's forward or backward, the loss
         * or the optimizer; the model's name their node ("fwd 3 conv 2->32 3x3/1 28x28"). */
        const char *scope = cJSON_GetStringValue(cJSON_GetObjectItem(e, "scope"));
        if (!scope || !(strcmp(scope, "data") == 0 || strncmp(scope, "fwd ", 4) == 0 ||
                        strncmp(scope, "bwd ", 4) == 0 || strcmp(scope, "loss") == 0 || strcmp(scope, "optimizer") == 0))
            fail_msg("trace line %d has scope '%s'", lines, scope ? scope : "(none)");
        if (strncmp(scope, "fwd ", 4) == 0 && strstr(scope, " conv ")) fwd_convs++;
        assert_true(num(e, "ms") >= 0);
        assert_true(num(e, "workgroups") >= 1); /* every dispatch launches something */
        sum += num(e, "ms");
        lines++;
        cJSON_Delete(e);
    }
    fclose(f);
    int dispatches = 0;
    cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItem(o, "kernels")) dispatches += (int)num(k, "dispatches");
    assert_true(lines > 20);
    assert_true(fwd_convs >= 4); /* the cnn's 4 convs, each its pack and kernel dispatches */
    assert_int_equal(lines, dispatches);
    assert_true(fabs(sum - num(o, "gpu_step_ms")) < 1e-3 * sum + 1e-3);
    cJSON_Delete(o);
}

/* --trace into a file that cannot be made: a usage error naming the path, no benchmark. */
static void bench_trace_to_an_unwritable_path_fails_with_a_message(void **state)
{
    (void)state;
    char cmd[512];
    /* (A directory that cannot be made even by root: bench makes missing parents otherwise.) */
    snprintf(cmd, sizeof cmd, "%s bench --quick --trace /proc/no-such-vka-dir/t.jsonl 2>&1", VKANCHOR_EXE);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, p);
    text[n] = 0;
    int status = pclose(p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    if (!strstr(text, "--trace /proc/no-such-vka-dir/t.jsonl")) fail_msg("no message naming the path: %s", text);
}

/* vkanchor bench ARGS, stderr and stdout into text: the exit status. */
static int bench_status(const char *args, char *text, size_t n)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s bench %s 2>&1", VKANCHOR_EXE, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(text, 1, n - 1, p);
    text[got] = 0;
    int status = pclose(p);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Numbers out of range or not numbers at all are usage errors naming the flag, before any
 * device work; a run that cannot start leaves an existing --trace file as it was. */
static void bench_refuses_bad_numbers_and_keeps_an_old_trace(void **state)
{
    (void)state;
    static const char *const bad[][2] = {{"--steps -1", "--steps -1"},          {"--batch-size 12abc", "--batch-size"},
                                         {"--peak-gflops nan", "--peak-gflops"}, {"--size 1000000", "--size"},
                                         {"--anchors 0", "--anchors"},           {"extra", "'extra'"}};
    char text[4096];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(bench_status(bad[i][0], text, sizeof text), 2);
        if (!strstr(text, bad[i][1])) fail_msg("bench %s: %s", bad[i][0], text);
    }
    /* --quick keeps the steps and warm-up given (its small defaults only fill in). */
    cJSON *given = bench("--steps 3 --warmup 0");
    assert_int_equal((int)num(given, "steps"), 3);
    cJSON_Delete(given);
    /* A flag that cannot act is said, and the run goes on. */
    assert_int_equal(bench_status("--quick --no-anchoring --anchors 3", text, sizeof text), 0);
    if (!strstr(text, "--anchors 3 does nothing")) fail_msg("bench --no-anchoring --anchors 3: %s", text);
    char path[] = "/tmp/vka_bench_trace_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "old\n", 4), 4);
    close(fd);
    char args[256];
    snprintf(args, sizeof args, "--quick --trace %s --device no-such-device", path);
    assert_int_equal(bench_status(args, text, sizeof text), 1);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char kept[16] = {0};
    assert_non_null(fgets(kept, sizeof kept, f));
    fclose(f);
    assert_string_equal(kept, "old\n");
    /* ... and so does one that fails once the device is up (a batch past one buffer binding),
     * with no partial trace beside it. */
    snprintf(args, sizeof args, "--quick --batch-size 65536 --trace %s", path);
    assert_int_equal(bench_status(args, text, sizeof text), 1);
    if (!strstr(text, "--batch-size")) fail_msg("bench with too large a batch: %s", text);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(kept, sizeof kept, f));
    fclose(f);
    assert_string_equal(kept, "old\n");
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (access(tmp, F_OK) == 0) fail_msg("a failed bench left %s", tmp);
    unlink(path);
    /* The directories a failed run made for its trace are taken away again; the one that was
     * there before stays. */
    char top[] = "/tmp/vka_bench_dirs_XXXXXX";
    assert_non_null(mkdtemp(top));
    snprintf(args, sizeof args, "--quick --batch-size 65536 --trace %s/new/sub/t.jsonl", top);
    assert_int_equal(bench_status(args, text, sizeof text), 1);
    char made[128];
    snprintf(made, sizeof made, "%s/new", top);
    if (access(made, F_OK) == 0) fail_msg("a failed bench left the directory %s", made);
    assert_int_equal(access(top, F_OK), 0);
    assert_int_equal(rmdir(top), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bench_quick_reports_throughput_kernels_and_memory),
        cmocka_unit_test(bench_trace_lists_every_dispatch_of_the_timed_step),
        cmocka_unit_test(bench_trace_to_an_unwritable_path_fails_with_a_message),
        cmocka_unit_test(bench_refuses_bad_numbers_and_keeps_an_old_trace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
