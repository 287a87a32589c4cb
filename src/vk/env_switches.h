/* The VKANCHOR_* environment switches (README "Environment"; A/B switches in docs/perf-log.md). */
#ifndef VKA_VK_ENV_SWITCHES_H
#define VKA_VK_ENV_SWITCHES_H

#include "vk/vk_internal.h"

/* Warns about every VKANCHOR_* variable set to a value its switch does not take, or whose name
 * no switch has; returns how many warnings it gave. Called once per context. */
unsigned vka_check_env_switches(vka_logger *lg);

/* Whether a switch of this name exists (tests keep the table in step with the code). */
int vka_env_switch_known(const char *name);

#endif
