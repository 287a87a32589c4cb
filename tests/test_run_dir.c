/* A run directory (src/train/run_dir.c) and a resumed run's settings (vka_train_config_changes):
 * one run at a time per directory, a fresh run clears what a replaced one left, a resumed run's
 * metrics run forward once, and changed settings are named. Host-only: no device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "train/run_dir.h"
#include "train/trainer.h"

static vka_logger quiet_logger(void)
{
    return (vka_logger){0};
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int exists(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* While one run holds a directory, another process's open is refused (naming the directory);
 * once it is released, it succeeds. Record locks belong to processes: the rival is a child. */
static void a_second_run_into_a_held_directory_is_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/vka_run_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    vka_logger lg = quiet_logger();
    int fd;
    assert_int_equal(vka_run_dir_open(&lg, dir, -1, &fd), VKA_SUCCESS);
    assert_true(fd >= 0);
    for (int held = 1; held >= 0; held--) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int other;
            vka_logger child = quiet_logger();
            if (vka_run_dir_open(&child, dir, -1, &other) == VKA_SUCCESS) _exit(0);
            _exit(strstr(child.last_error, "another vkanchor train") && strstr(child.last_error, dir) ? 1 : 2);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (held) assert_int_equal(WEXITSTATUS(status), 1);
        else assert_int_equal(WEXITSTATUS(status), 0);
        if (held) vka_run_dir_close(fd);
    }
    test_remove_dir(dir);
}

/* An --out several levels below an existing directory is made, like mkdir -p (as eval makes
 * its report's directories). */
static void a_nested_run_directory_is_made_with_its_parents(void **state)
{
    (void)state;
    char dir[] = "/tmp/vka_run_dir_XXXXXX", nested[128];
    assert_non_null(mkdtemp(dir));
    snprintf(nested, sizeof nested, "%s/a/b/c", dir);
    vka_logger lg = quiet_logger();
    int fd;
    assert_int_equal(vka_run_dir_open(&lg, nested, -1, &fd), VKA_SUCCESS);
    vka_run_dir_close(fd);
    assert_true(exists(nested, ".lock"));
    test_remove_dir(dir);
}

/* A fresh run removes the replaced run's checkpoint and curves (its metrics are rewritten by
 * the run itself); a resumed run keeps them. */
static void a_fresh_run_clears_a_replaced_runs_model_and_a_resumed_one_keeps_it(void **state)
{
    (void)state;
    char dir[] = "/tmp/vka_run_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    vka_logger lg = quiet_logger();
    const char *left[] = {"checkpoint.ckpt", "loss.png", "accuracy.png"};
    for (int i = 0; i < 3; i++) write_file(dir, left[i], "old");
    int fd;
    assert_int_equal(vka_run_dir_open(&lg, dir, 10, &fd), VKA_SUCCESS);
    vka_run_dir_close(fd);
    for (int i = 0; i < 3; i++) assert_true(exists(dir, left[i]));
    assert_int_equal(vka_run_dir_open(&lg, dir, -1, &fd), VKA_SUCCESS);
    vka_run_dir_close(fd);
    for (int i = 0; i < 3; i++)
        if (exists(dir, left[i])) fail_msg("a fresh run left the replaced run's %s", left[i]);
    test_remove_dir(dir);
}

/* Resuming from step 4 drops the records a run wrote after that checkpoint (steps 5 and 6, and
 * an epoch record at 6) and keeps the rest, in order, byte for byte. */
static void a_resumed_run_drops_the_records_past_its_checkpoint(void **state)
{
    (void)state;
    char dir[] = "/tmp/vka_run_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *keep = "{\"type\":\"step\",\"epoch\":1,\"step\":2,\"loss\":1.5}\n"
                       "{\"type\":\"epoch\",\"epoch\":1,\"step\":4,\"train_loss\":1.2}\n"
                       "not a record\n";
    char text[1024];
    snprintf(text, sizeof text, "%s{\"type\":\"step\",\"epoch\":2,\"step\":5,\"loss\":1.1}\n"
                                "{\"type\":\"step\",\"epoch\":2,\"step\":6,\"loss\":1.0}\n"
                                "{\"type\":\"epoch\",\"epoch\":2,\"step\":6,\"train_loss\":1.0}\n", keep);
    write_file(dir, "metrics.jsonl", text);
    vka_logger lg = quiet_logger();
    int fd;
    assert_int_equal(vka_run_dir_open(&lg, dir, 4, &fd), VKA_SUCCESS);
    vka_run_dir_close(fd);
    char path[512], got[1024] = {0};
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[n] = 0;
    assert_string_equal(got, keep);
    test_remove_dir(dir);
}

/* The settings a resumed run changed are named with both values; the ones it may change
 * (epochs, max_steps, out_dir, device) are not. */
static void a_resumed_runs_changed_settings_are_named(void **state)
{
    (void)state;
    vka_train_config was, now;
    vka_train_config_default(&was);
    now = was;
    now.epochs = was.epochs + 5;
    now.max_steps = 7;
    snprintf(now.out_dir, sizeof now.out_dir, "elsewhere");
    char *json = vka_train_config_json(&was);
    assert_null(vka_train_config_changes(json, &now));
    now.batch_size = was.batch_size * 2;
    now.lr = was.lr / 2;
    snprintf(now.data, sizeof now.data, "/somewhere/else");
    char *changes = vka_train_config_changes(json, &now);
    assert_non_null(changes);
    char want[256];
    snprintf(want, sizeof want, "batch_size %u (was %u)", now.batch_size, was.batch_size);
    if (!strstr(changes, want) || !strstr(changes, "lr ") || !strstr(changes, "data \"/somewhere/else\"") ||
        strstr(changes, "epochs") || strstr(changes, "max_steps") || strstr(changes, "out_dir"))
        fail_msg("changes: %s", changes);
    free(changes);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_second_run_into_a_held_directory_is_refused),
        cmocka_unit_test(a_nested_run_directory_is_made_with_its_parents),
        cmocka_unit_test(a_fresh_run_clears_a_replaced_runs_model_and_a_resumed_one_keeps_it),
        cmocka_unit_test(a_resumed_run_drops_the_records_past_its_checkpoint),
        cmocka_unit_test(a_resumed_runs_changed_settings_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
