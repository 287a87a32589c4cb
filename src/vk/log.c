/* Result names, the logger, and VkResult mapping. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vk/vk_internal.h"

const char *vka_result_string(vka_result result)
{
    static const char *const names[VKA_RESULT_COUNT] = {
        [VKA_SUCCESS] = "success",
        [VKA_ERROR_INVALID_ARGUMENT] = "invalid argument",
        [VKA_ERROR_NO_DEVICE] = "no Vulkan device",
        [VKA_ERROR_DEVICE_NOT_FOUND] = "device not found",
        [VKA_ERROR_OUT_OF_DEVICE_MEMORY] = "out of device memory",
        [VKA_ERROR_OUT_OF_HOST_MEMORY] = "out of host memory",
        [VKA_ERROR_LIMIT_EXCEEDED] = "device limit exceeded",
        [VKA_ERROR_SHADER_MISMATCH] = "shader interface mismatch",
        [VKA_ERROR_UNSUPPORTED] = "unsupported by the device",
        [VKA_ERROR_VULKAN] = "Vulkan error",
        [VKA_ERROR_IO] = "I/O error",
        [VKA_ERROR_FORMAT] = "malformed file",
    };
    if ((unsigned)result >= VKA_RESULT_COUNT) return "unknown result";
    return names[result];
}

static void vka_log_v(vka_logger *lg, vka_log_level level, const char *fmt, va_list ap)
{
    char line[sizeof lg->last_error];
    vsnprintf(line, sizeof line, fmt, ap);
    if (level == VKA_LOG_ERROR) memcpy(lg->last_error, line, sizeof line);
    if (lg->fn) lg->fn(lg->user, level, line);
}

void vka_log(vka_logger *lg, vka_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vka_log_v(lg, level, fmt, ap);
    va_end(ap);
}

vka_result vka_fail(vka_logger *lg, vka_result result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vka_log_v(lg, VKA_LOG_ERROR, fmt, ap);
    va_end(ap);
    return result;
}

const char *vka_vk_result_name(VkResult vr)
{
    switch (vr) {
#define N(x) case x: return #x;
        N(VK_SUCCESS) N(VK_NOT_READY) N(VK_TIMEOUT) N(VK_INCOMPLETE)
        N(VK_ERROR_OUT_OF_HOST_MEMORY) N(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        N(VK_ERROR_INITIALIZATION_FAILED) N(VK_ERROR_DEVICE_LOST)
        N(VK_ERROR_MEMORY_MAP_FAILED) N(VK_ERROR_LAYER_NOT_PRESENT)
        N(VK_ERROR_EXTENSION_NOT_PRESENT) N(VK_ERROR_FEATURE_NOT_PRESENT)
        N(VK_ERROR_INCOMPATIBLE_DRIVER) N(VK_ERROR_TOO_MANY_OBJECTS)
        N(VK_ERROR_FORMAT_NOT_SUPPORTED) N(VK_ERROR_FRAGMENTED_POOL)
        N(VK_ERROR_OUT_OF_POOL_MEMORY) N(VK_ERROR_UNKNOWN)
#undef N
    default: return "VkResult(other)";
    }
}

vka_result vka_vk_fail(vka_logger *lg, VkResult vr, const char *expr, const char *file, int line)
{
    vka_result r = VKA_ERROR_VULKAN;
    if (vr == VK_ERROR_OUT_OF_DEVICE_MEMORY) r = VKA_ERROR_OUT_OF_DEVICE_MEMORY;
    if (vr == VK_ERROR_OUT_OF_HOST_MEMORY) r = VKA_ERROR_OUT_OF_HOST_MEMORY;
    return vka_fail(lg, r, "%s failed with %s (%d) at %s:%d", expr, vka_vk_result_name(vr),
                    (int)vr, file, line);
}
