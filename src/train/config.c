/* Training configuration: defaults, JSON (written and read back), schedules. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "train/trainer.h"

void vka_train_config_default(vka_train_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->data, sizeof c->data, "fashion-mnist");
    c->model = VKA_MODEL_CNN;
    c->epochs = 2;
    c->batch_size = 128;
    c->optimizer = VKA_OPT_SGD;
    c->lr = 0.05;
    c->momentum = 0.9;
    c->weight_decay = 5e-4;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->adam_eps = 1e-8;
    c->schedule = VKA_SCHED_COSINE;
    c->gamma = 0.2;
    c->anchoring = 1;
    c->mask_prob = 0.25;
    c->mask_target = VKA_MASK_TARGET_LABEL;
    c->mask_bn_stats = VKA_MASK_BN_SKIP;
    c->ref_pool = VKA_REF_POOL_BATCH;
    c->crop_pad = 2;
    c->flip = 1;
    c->seed = 0;
}

static const char *const OPT[] = {"sgd", "adamw"};
static const char *const SCHED[] = {"cosine", "multistep", "constant"};
static const char *const TARGET[] = {"label", "uniform"};
static const char *const MASKBN[] = {"skip", "update"};
static const char *const POOL[] = {"batch", "train"};

char *vka_train_config_json(const vka_train_config *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "data", c->data);
    cJSON_AddStringToObject(o, "model", vka_model_kind_name(c->model));
    cJSON_AddNumberToObject(o, "epochs", c->epochs);
    cJSON_AddNumberToObject(o, "batch_size", c->batch_size);
    cJSON_AddStringToObject(o, "optimizer", OPT[c->optimizer]);
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddNumberToObject(o, "momentum", c->momentum);
    cJSON_AddBoolToObject(o, "nesterov", c->nesterov);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(o, "beta1", c->beta1);
    cJSON_AddNumberToObject(o, "beta2", c->beta2);
    cJSON_AddNumberToObject(o, "adam_eps", c->adam_eps);
    cJSON_AddStringToObject(o, "schedule", SCHED[c->schedule]);
    cJSON *ms = cJSON_AddArrayToObject(o, "milestones");
    for (uint32_t i = 0; i < c->milestone_count; i++) cJSON_AddItemToArray(ms, cJSON_CreateNumber(c->milestones[i]));
    cJSON_AddNumberToObject(o, "gamma", c->gamma);
    cJSON_AddNumberToObject(o, "warmup_epochs", c->warmup_epochs);
    cJSON_AddBoolToObject(o, "anchoring", c->anchoring);
    cJSON_AddNumberToObject(o, "mask_prob", c->mask_prob);
    cJSON_AddStringToObject(o, "mask_target", TARGET[c->mask_target]);
    cJSON_AddStringToObject(o, "mask_bn_stats", MASKBN[c->mask_bn_stats]);
    cJSON_AddStringToObject(o, "ref_pool", POOL[c->ref_pool]);
    cJSON_AddNumberToObject(o, "crop_pad", c->crop_pad);
    cJSON_AddBoolToObject(o, "flip", c->flip);
    cJSON_AddNumberToObject(o, "label_smoothing", c->label_smoothing);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed); /* a string: JSON numbers lose 64-bit seeds */
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddNumberToObject(o, "max_steps", (double)c->max_steps);
    cJSON_AddStringToObject(o, "device", c->device);
    cJSON_AddStringToObject(o, "out_dir", c->out_dir);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

/* A growing "a, b, c" list (NULL once out of memory). */
typedef struct change_list {
    char *text;
    size_t len, cap;
} change_list;

static void add_change(change_list *l, const char *key, const char *now, const char *was)
{
    if (!l->text) return;
    size_t need = l->len + strlen(key) + strlen(now) + strlen(was) + 32;
    if (need > l->cap) {
        char *grown = realloc(l->text, l->cap = 2 * need);
        if (!grown) free(l->text);
        if (!(l->text = grown)) return;
    }
    l->len += (size_t)snprintf(l->text + l->len, l->cap - l->len, "%s%s %s (%s)", l->len ? ", " : "", key, now, was);
}

char *vka_train_config_changes(const char *was_json, const vka_train_config *now)
{
    /* What a resumed run may change without leaving the run it continues: where it stops, where
     * it writes and on which device; and how many epochs, unless the schedule is cosine (whose
     * every learning rate depends on the total). */
    static const char *const free_keys[] = {"max_steps", "out_dir", "device", "epochs"};
    const size_t free_count = now->schedule == VKA_SCHED_COSINE ? 3 : 4;
    char *now_json = vka_train_config_json(now);
    cJSON *was = cJSON_Parse(was_json), *is = now_json ? cJSON_Parse(now_json) : NULL;
    free(now_json);
    change_list l = {malloc(1024), 0, 1024};
    if (l.text) l.text[0] = 0;
    /* Every setting of either side, once: the old run's, then those it did not record. */
    const cJSON *sides[2] = {was, is}, *item;
    for (int side = 0; side < 2; side++)
        cJSON_ArrayForEach(item, sides[side]) {
            int skip = side == 1 && cJSON_GetObjectItemCaseSensitive(was, item->string);
            for (size_t k = 0; k < free_count; k++) skip |= strcmp(item->string, free_keys[k]) == 0;
            const cJSON *before = cJSON_GetObjectItemCaseSensitive(was, item->string);
            const cJSON *after = cJSON_GetObjectItemCaseSensitive(is, item->string);
            if (skip || (before && after && cJSON_Compare(before, after, 1))) continue;
            char *a = before ? cJSON_PrintUnformatted(before) : NULL, *b = after ? cJSON_PrintUnformatted(after) : NULL;
            char was_text[512];
            snprintf(was_text, sizeof was_text, before ? "was %s" : "not recorded", a ? a : "?");
            add_change(&l, item->string, after ? (b ? b : "?") : "none", was_text);
            cJSON_free(a), cJSON_free(b);
        }
    cJSON_Delete(was), cJSON_Delete(is);
    if (l.text && !l.len) {
        free(l.text);
        return NULL;
    }
    return l.text;
}

static int pick(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (s && strcmp(names[i], s) == 0) return i;
    return -1;
}

vka_result vka_train_config_parse(vka_logger *lg, const char *json, vka_train_config *c)
{
    vka_train_config_default(c);
    cJSON *o = cJSON_Parse(json);
    if (!o) return vka_fail(lg, VKA_ERROR_FORMAT, "configuration is not valid JSON");
    /* Numbers inside the ranges the CLI takes (the CRC of a checkpoint vouches for no values: a
     * crafted or damaged one must not put -1 or 1e30 into an unsigned field). */
    const char *bad = NULL;
#define NUM_IN(key, field, lo, hi)                                                                          \
    do {                                                                                                    \
        cJSON *it = cJSON_GetObjectItem(o, key);                                                            \
        if (!cJSON_IsNumber(it)) break;                                                                     \
        if (!(it->valuedouble >= (lo) && it->valuedouble <= (hi))) { bad = bad ? bad : key; break; }       \
        c->field = it->valuedouble;                                                                         \
    } while (0)
#define NUM(key, field) NUM_IN(key, field, -1e300, 1e300)
#define BOOL(key, field) do { cJSON *it = cJSON_GetObjectItem(o, key); if (cJSON_IsBool(it)) c->field = cJSON_IsTrue(it); } while (0)
#define STR(key, field) do { const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key)); if (s) snprintf(c->field, sizeof c->field, "%s", s); } while (0)
#define ENUM(key, field, names, n) do { int v = pick(names, n, cJSON_GetStringValue(cJSON_GetObjectItem(o, key))); if (v >= 0) c->field = v; } while (0)
    STR("data", data);
    vka_model_kind kind;
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(o, "model"));
    int ok = model && vka_model_kind_parse(model, &kind);
    if (ok) c->model = kind;
    NUM_IN("epochs", epochs, 1, 100000);
    NUM_IN("batch_size", batch_size, 2, 65536);
    ENUM("optimizer", optimizer, OPT, 2);
    NUM_IN("lr", lr, 0, 100);
    NUM_IN("momentum", momentum, 0, 0.9999);
    BOOL("nesterov", nesterov);
    NUM_IN("weight_decay", weight_decay, 0, 1);
    NUM_IN("beta1", beta1, 0, 0.9999999);
    NUM_IN("beta2", beta2, 0, 0.9999999);
    NUM_IN("adam_eps", adam_eps, 1e-30, 1);
    ENUM("schedule", schedule, SCHED, 3);
    cJSON *ms = cJSON_GetObjectItem(o, "milestones"), *it;
    c->milestone_count = 0;
    cJSON_ArrayForEach(it, ms) {
        if (!cJSON_IsNumber(it) || !(it->valuedouble >= 1 && it->valuedouble <= 100000)) bad = bad ? bad : "milestones";
        else if (c->milestone_count < VKA_MAX_MILESTONES) c->milestones[c->milestone_count++] = (uint32_t)it->valuedouble;
    }
    NUM_IN("gamma", gamma, 0, 1);
    NUM_IN("warmup_epochs", warmup_epochs, 0, 100000);
    BOOL("anchoring", anchoring);
    NUM_IN("mask_prob", mask_prob, 0, 1);
    ENUM("mask_target", mask_target, TARGET, 2);
    ENUM("mask_bn_stats", mask_bn_stats, MASKBN, 2);
    ENUM("ref_pool", ref_pool, POOL, 2);
    NUM_IN("crop_pad", crop_pad, 0, 64);
    BOOL("flip", flip);
    NUM_IN("label_smoothing", label_smoothing, 0, 1);
    const char *seed = cJSON_GetStringValue(cJSON_GetObjectItem(o, "seed"));
    if (seed) c->seed = strtoull(seed, NULL, 10);
    NUM_IN("max_steps", max_steps, 0, 1e15);
    STR("device", device);
    STR("out_dir", out_dir);
#undef NUM
#undef NUM_IN
#undef BOOL
#undef STR
#undef ENUM
    cJSON_Delete(o);
    if (!ok) return vka_fail(lg, VKA_ERROR_FORMAT, "configuration names no known model");
    if (bad) return vka_fail(lg, VKA_ERROR_FORMAT, "configuration: '%s' is out of its range", bad);
    return VKA_SUCCESS;
}

double vka_train_lr(const vka_train_config *c, uint64_t step, uint64_t steps_per_epoch)
{
    double epoch = (double)step / (double)(steps_per_epoch ? steps_per_epoch : 1);
    switch (c->schedule) {
    case VKA_SCHED_CONSTANT: return c->lr;
    case VKA_SCHED_MULTISTEP: {
        double lr = c->lr;
        for (uint32_t i = 0; i < c->milestone_count; i++)
            if (epoch >= c->milestones[i]) lr *= c->gamma;
        return lr;
    }
    case VKA_SCHED_COSINE:
    default: {
        double warm = c->warmup_epochs;
        if (epoch < warm) return c->lr * (epoch + 1.0 / (double)steps_per_epoch) / warm;
        double total = c->epochs > warm ? c->epochs - warm : 1;
        double t = (epoch - warm) / total;
        if (t > 1) t = 1;
        return 0.5 * c->lr * (1 + cos(3.14159265358979323846 * t));
    }
    }
}
