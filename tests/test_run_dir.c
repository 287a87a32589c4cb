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

/* A run configuration for directory `dir`: fresh, or resuming from `resume`, optionally
 * with --overwrite. */
static vka_train_config run_in(const char *dir, const char *resume, int overwrite)
{
    vka_train_config c;
    vka_train_config_default(&c);
    snprintf(c.out_dir, sizeof c.out_dir, "%s", dir);
    if (resume) snprintf(c.resume, sizeof c.resume, "%s", resume);
    c.overwrite = overwrite;
    return c;
}

/* vka_run_dir_open of c at resume step `step`, released at once: its result. */
static vka_result open_and_close(const vka_train_config *c, uint64_t step, int *continuing, char *error, size_t n)
{
    vka_logger lg = quiet_logger();
    int fd, cont, append;
    vka_result rc = vka_run_dir_open(&lg, c, step, &cont, &append, &fd);
    vka_run_dir_close(fd);
    if (continuing) *continuing = cont;
    if (error) snprintf(error, n, "%s", lg.last_error);
    return rc;
}

/* While one run holds a directory, another process's open is refused (naming the directory);
 * once it is released, it succeeds. Record locks belong to processes: the rival is a child. */
static void a_second_run_into_a_held_directory_is_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/vka_run_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    vka_logger lg = quiet_logger();
    vka_train_config c = run_in(dir, NULL, 1);
    int fd, cont, append;
    assert_int_equal(vka_run_dir_open(&lg, &c, 0, &cont, &append, &fd), VKA_SUCCESS);
    assert_true(fd >= 0);
    for (int held = 1; held >= 0; held--) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int other, other_cont, other_append;
            vka_logger child = quiet_logger();
            if (vka_run_dir_open(&child, &c, 0, &other_cont, &other_append, &other) == VKA_SUCCESS) _exit(0);
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
 * its report's directories); an empty one is refused. */
static void a_nested_run_directory_is_made_with_its_parents(void **state)
{
    (void)state;
    char dir[] = "/tmp/vka_run_dir_XXXXXX", nested[128];
    assert_non_null(mkdtemp(dir));
    snprintf(nested, sizeof nested, "%s/a/b/c", dir);
    vka_train_config c = run_in(nested, NULL, 0);
    assert_int_equal(open_and_close(&c, 0, NULL, NULL, 0), VKA_SUCCESS);
    assert_true(exists(nested, ".lock"));
    c = run_in("", NULL, 0);
    assert_int_equal(open_and_close(&c, 0, NULL, NULL, 0), VKA_ERROR_INVALID_ARGUMENT);
    test_remove_dir(dir);
}

/* A directory holding a run: a fresh run is refused without --overwrite (the files untouched)
 * and clears the old run with it; a run resumed from another directory's checkpoint is a
 * fresh run here too; one resumed from the directory's own checkpoint keeps it. */
static void a_run_is_replaced_only_with_overwrite_and_continued_only_from_its_own_checkpoint(void **state)
{
    (void)state;
    char dir[] = "/tmp/vka_run_dir_XXXXXX", own[128], elsewhere[128], error[1024];
    assert_non_null(mkdtemp(dir));
    const char *left[] = {"checkpoint.ckpt", "metrics.jsonl", "loss.png", "accuracy.png"};
    snprintf(own, sizeof own, "%s/checkpoint.ckpt", dir);
    snprintf(elsewhere, sizeof elsewhere, "%s.none/checkpoint.ckpt", dir); /* (a directory no run made) */
    const vka_train_config cases[] = {run_in(dir, NULL, 0), run_in(dir, elsewhere, 0)};
    for (int i = 0; i < 2; i++) {
        for (int f = 0; f < 4; f++) write_file(dir, left[f], "old\n");
        assert_int_equal(open_and_close(&cases[i], 0, NULL, error, sizeof error), VKA_ERROR_INVALID_ARGUMENT);
        if (!strstr(error, "already holds a run") || !strstr(error, "--overwrite")) fail_msg("refusal: %s", error);
        for (int f = 0; f < 4; f++) assert_true(exists(dir, left[f]));
        vka_train_config over = cases[i];
        over.overwrite = 1;
        int continuing = 1;
        assert_int_equal(open_and_close(&over, 0, &continuing, NULL, 0), VKA_SUCCESS);
        assert_int_equal(continuing, 0);
        for (int f = 0; f < 4; f++)
            if (exists(dir, left[f])) fail_msg("case %d: a replacing run left the old %s", i, left[f]);
    }
    /* Another checkpoint kept in the directory is not its run: resuming it there is a fresh run. */
    for (int f = 0; f < 4; f++) write_file(dir, left[f], "old\n");
    write_file(dir, "other.ckpt", "another run's\n");
    char other[160];
    snprintf(other, sizeof other, "%s/other.ckpt", dir);
    vka_train_config foreign = run_in(dir, other, 0);
    assert_int_equal(open_and_close(&foreign, 0, NULL, error, sizeof error), VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(error, "already holds a run")) fail_msg("a foreign checkpoint resumed in a run's directory: %s", error);
    for (int f = 0; f < 4; f++) assert_true(exists(dir, left[f]));
    /* A user's own config.json there counts too, and without a checkpoint the advice is not to resume. */
    char lone[] = "/tmp/vka_run_dir_XXXXXX";
    assert_non_null(mkdtemp(lone));
    write_file(lone, "config.json", "{\"mine\": 1}\n");
    vka_train_config into_lone = run_in(lone, NULL, 0);
    assert_int_equal(open_and_close(&into_lone, 0, NULL, error, sizeof error), VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(error, "(config.json)") || strstr(error, "--resume")) fail_msg("a user's config.json: %s", error);
    test_remove_dir(lone);
    vka_train_config cont = run_in(dir, own, 0);
    int continuing = 0;
    assert_int_equal(open_and_close(&cont, 10, &continuing, NULL, 0), VKA_SUCCESS);
    assert_int_equal(continuing, 1);
    for (int f = 0; f < 4; f++) assert_true(exists(dir, left[f]));
    test_remove_dir(dir);
}

/* Resuming from step 4 drops the records a run wrote after that checkpoint (steps 5 and 6, and
 * an epoch record at 6) and a last line cut short, and keeps the rest, in order, byte for byte. */
static void a_resumed_run_drops_the_records_past_its_checkpoint(void **state)
{
    (void)state;
    char dir[] = "/tmp/vka_run_dir_XXXXXX", own[128];
    assert_non_null(mkdtemp(dir));
    const char *keep = "{\"type\":\"step\",\"epoch\":1,\"step\":2,\"loss\":1.5}\n"
                       "{\"type\":\"epoch\",\"epoch\":1,\"step\":4,\"train_loss\":1.2}\n"
                       "not a record\n";
    char text[1024];
    snprintf(text, sizeof text, "%s{\"type\":\"step\",\"epoch\":2,\"step\":5,\"loss\":1.1}\n"
                                "{\"type\":\"step\",\"epoch\":2,\"step\":6,\"loss\":1.0}\n"
                                "{\"type\":\"epoch\",\"epoch\":2,\"step\":6,\"train_loss\":1.0}\n"
                                "{\"type\":\"step\",\"epo", keep);
    write_file(dir, "metrics.jsonl", text);
    write_file(dir, "checkpoint.ckpt", "the run's own\n");
    snprintf(own, sizeof own, "%s/checkpoint.ckpt", dir);
    vka_train_config c = run_in(dir, own, 0);
    assert_int_equal(open_and_close(&c, 4, NULL, NULL, 0), VKA_SUCCESS);
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

/* Resumed into another directory, a run's metrics start with its records up to the checkpoint,
 * copied from the directory whose own checkpoint it is; a copy of a checkpoint kept elsewhere
 * brings no records (they would be another run's). */
static void a_run_resumed_elsewhere_starts_with_its_records(void **state)
{
    (void)state;
    char a[] = "/tmp/vka_run_dir_XXXXXX", b[] = "/tmp/vka_run_dir_XXXXXX", own[128], copy[128];
    assert_non_null(mkdtemp(a));
    assert_non_null(mkdtemp(b));
    write_file(a, "checkpoint.ckpt", "run A\n");
    write_file(a, "copy.ckpt", "run A, kept aside\n");
    const char *upto4 = "{\"type\":\"step\",\"step\":2}\n{\"type\":\"epoch\",\"step\":4}\n";
    char all[256];
    snprintf(all, sizeof all, "%s{\"type\":\"step\",\"step\":6}\n", upto4);
    write_file(a, "metrics.jsonl", all);
    snprintf(own, sizeof own, "%s/checkpoint.ckpt", a);
    snprintf(copy, sizeof copy, "%s/copy.ckpt", a);
    vka_logger lg = quiet_logger();
    char into[160];
    snprintf(into, sizeof into, "%s/from-own", b);
    vka_train_config c = run_in(into, own, 0);
    int fd, cont, append;
    assert_int_equal(vka_run_dir_open(&lg, &c, 4, &cont, &append, &fd), VKA_SUCCESS);
    vka_run_dir_close(fd);
    assert_int_equal(cont, 0);
    assert_int_equal(append, 1);
    char path[256], got[256] = {0};
    snprintf(path, sizeof path, "%s/metrics.jsonl", into);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    got[fread(got, 1, sizeof got - 1, f)] = 0;
    fclose(f);
    assert_string_equal(got, upto4);
    snprintf(into, sizeof into, "%s/from-copy", b);
    c = run_in(into, copy, 0);
    assert_int_equal(vka_run_dir_open(&lg, &c, 4, &cont, &append, &fd), VKA_SUCCESS);
    vka_run_dir_close(fd);
    assert_int_equal(append, 0);
    assert_false(exists(into, "metrics.jsonl"));
    test_remove_dir(a);
    test_remove_dir(b);
}

/* A run's file that is a symbolic link is refused before the run starts (its first atomic
 * write would replace the link), the link left as it was. */
static void a_linked_run_file_is_refused_up_front(void **state)
{
    (void)state;
    char dir[] = "/tmp/vka_run_dir_XXXXXX", link_path[128], target[128], error[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(link_path, sizeof link_path, "%s/config.json", dir);
    snprintf(target, sizeof target, "%s/link-target.json", dir);
    assert_int_equal(symlink(target, link_path), 0);
    vka_train_config c = run_in(dir, NULL, 1);
    assert_int_equal(open_and_close(&c, 0, NULL, error, sizeof error), VKA_ERROR_INVALID_ARGUMENT);
    if (!strstr(error, "symbolic link")) fail_msg("a linked config.json: %s", error);
    struct stat st;
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_not_equal(access(target, F_OK), 0); /* nothing written through the link */
    test_remove_dir(dir);
}

/* The settings a resumed run changed are named with both values; the ones it may change
 * (max_steps, out_dir, device, and epochs except under the cosine schedule) are not. */
static void a_resumed_runs_changed_settings_are_named(void **state)
{
    (void)state;
    vka_train_config was, now;
    vka_train_config_default(&was);
    assert_int_equal(was.schedule, VKA_SCHED_COSINE);
    now = was;
    now.epochs = was.epochs + 5;
    {   /* cosine: the total shapes every learning rate */
        char *j = vka_train_config_json(&was), *ch = vka_train_config_changes(j, &now);
        if (!ch || !strstr(ch, "epochs")) fail_msg("epochs under cosine: %s", ch ? ch : "(none)");
        free(ch), free(j);
        was.schedule = now.schedule = VKA_SCHED_CONSTANT;
    }
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

/* A run configuration read back (a checkpoint's) takes numbers only inside the ranges the CLI
 * takes: out of range, it is refused naming the field (no -1 or 1e9 in an unsigned field). */
static void a_configuration_out_of_range_is_refused(void **state)
{
    (void)state;
    vka_train_config c;
    vka_logger lg = quiet_logger();
    assert_int_equal(vka_train_config_parse(&lg, "{\"model\":\"cnn\",\"crop_pad\":1e9}", &c), VKA_ERROR_FORMAT);
    if (!strstr(lg.last_error, "'crop_pad'")) fail_msg("crop_pad 1e9: %s", lg.last_error);
    assert_int_equal(vka_train_config_parse(&lg, "{\"model\":\"cnn\",\"epochs\":-1}", &c), VKA_ERROR_FORMAT);
    assert_int_equal(vka_train_config_parse(&lg, "{\"model\":\"cnn\",\"milestones\":[3,-2]}", &c), VKA_ERROR_FORMAT);
    assert_int_equal(vka_train_config_parse(&lg, "{\"model\":\"cnn\",\"epochs\":7,\"lr\":0.5}", &c), VKA_SUCCESS);
    assert_int_equal(c.epochs, 7);
    /* A setting the old configuration did not record is named as such. */
    vka_train_config now;
    vka_train_config_default(&now);
    char *changes = vka_train_config_changes("{\"model\":\"cnn\"}", &now);
    if (!changes || !strstr(changes, "lr 0.05 (not recorded)")) fail_msg("unrecorded settings: %s", changes);
    free(changes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_second_run_into_a_held_directory_is_refused),
        cmocka_unit_test(a_nested_run_directory_is_made_with_its_parents),
        cmocka_unit_test(a_run_is_replaced_only_with_overwrite_and_continued_only_from_its_own_checkpoint),
        cmocka_unit_test(a_linked_run_file_is_refused_up_front),
        cmocka_unit_test(a_run_resumed_elsewhere_starts_with_its_records),
        cmocka_unit_test(a_resumed_run_drops_the_records_past_its_checkpoint),
        cmocka_unit_test(a_resumed_runs_changed_settings_are_named),
        cmocka_unit_test(a_configuration_out_of_range_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
