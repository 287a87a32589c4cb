/* The VKANCHOR_* environment switches, checked once per context (env_switches.h): a value a
 * switch does not know, or a name no switch has (a typo), is said, not silently ignored. */
#include <stdlib.h>
#include <string.h>

#include "vk/env_switches.h"

extern char **environ;

typedef struct env_switch {
    const char *name;
    const char *values; /* accepted values, space-separated; NULL: any (a path, a number checked where read) */
} env_switch;

/* On/off switches for A/B runs: "0" turns the optimisation off (vka_switch_off). */
#define ONOFF "0 1"
static const env_switch SWITCHES[] = {
    {"VKANCHOR_VALIDATION", ONOFF},        {"VKANCHOR_SYNC_VALIDATION", ONOFF}, {"VKANCHOR_LIMITS", "min"},
    {"VKANCHOR_DATA", NULL},               {"VKANCHOR_MAX_STORAGE_RANGE", NULL}, {"VKANCHOR_TEST_DEVICE", NULL},
    {"VKANCHOR_EXE", NULL}, /* the binary scripts/bench-devices.sh runs (read there, not here) */
    {"VKANCHOR_CONV", "tiled texel"},      {"VKANCHOR_MATMUL", "tiled texel"},  {"VKANCHOR_BN_REDUCE", "gpu cpu"},
    {"VKANCHOR_TILED_BLOCK", "4x4 4x8 8x4 8x8"},
    {"VKANCHOR_BN_SPAN", ONOFF},           {"VKANCHOR_CONV_CPAIR", ONOFF},      {"VKANCHOR_CONV_PACKED", ONOFF},
    {"VKANCHOR_CONV_PAIRS", ONOFF},        {"VKANCHOR_CONV_SHARED_X", ONOFF},   {"VKANCHOR_CONV_STATS", ONOFF},
    {"VKANCHOR_COOPMAT", ONOFF},           {"VKANCHOR_FUSE_RESIDUAL", ONOFF},   {"VKANCHOR_INPUT_PACKED", ONOFF},
    {"VKANCHOR_POOL_BN", ONOFF},           {"VKANCHOR_REDUCE_VEC4", ONOFF},     {"VKANCHOR_TEXEL", ONOFF},
    {"VKANCHOR_TILED_PREFETCH", ONOFF},    {"VKANCHOR_TILED_VEC4", ONOFF},
};
#define NUM_SWITCHES (sizeof SWITCHES / sizeof *SWITCHES)

/* Whether `value` is one of the space-separated words of `values`. */
static int one_of(const char *values, const char *value)
{
    size_t n = strlen(value);
    for (const char *w = values; *w;) {
        size_t len = strcspn(w, " ");
        if (len == n && strncmp(w, value, n) == 0) return 1;
        w += len;
        while (*w == ' ') w++;
    }
    return 0;
}

static const env_switch *find_switch(const char *name)
{
    for (size_t i = 0; i < NUM_SWITCHES; i++)
        if (strcmp(SWITCHES[i].name, name) == 0) return &SWITCHES[i];
    return NULL;
}

int vka_env_switch_known(const char *name) { return find_switch(name) != NULL; }

unsigned vka_check_env_switches(vka_logger *lg)
{
    unsigned warned = 0;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "VKANCHOR_", 9) != 0) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        char name[64];
        size_t len = (size_t)(eq - *e);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, *e, len);
        name[len] = 0;
        const env_switch *s = find_switch(name);
        if (!s) {
            vka_log(lg, VKA_LOG_WARNING, "%s is set but no vkanchor switch has that name; ignored", name);
            warned++;
        } else if (s->values && eq[1] && !one_of(s->values, eq + 1) && strcmp(name, "VKANCHOR_LIMITS") != 0) {
            /* (VKANCHOR_LIMITS says so itself where it is read.) */
            vka_log(lg, VKA_LOG_WARNING, "%s=%s is not one of: %s; ignored", name, eq + 1, s->values);
            warned++;
        }
    }
    return warned;
}
