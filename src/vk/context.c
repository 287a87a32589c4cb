/* Instance (volk, validation, debug messenger), device selection and creation. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/env_switches.h"
#include "vk/vk_internal.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

static VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    vka_logger *lg = user;
    if (severity < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
    if (types & (VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)) {
        /* Any warning or error of the layers counts: tests (and a CLI command) fail on it. */
        lg->validation_messages++;
        vka_log(lg, VKA_LOG_VALIDATION, "validation: %s", data->pMessage);
    } else {
        /* GENERAL: the loader's own (a stale driver manifest, say), not an error of ours. */
        vka_log(lg, VKA_LOG_WARNING, "Vulkan loader: %s", data->pMessage);
    }
    return VK_FALSE;
}

static int want_validation(const vka_context_desc *desc)
{
    if (desc->validation == VKA_VALIDATION_ON) return 1;
    if (desc->validation == VKA_VALIDATION_OFF) return 0;
    const char *env = getenv("VKANCHOR_VALIDATION");
    return env && strcmp(env, "1") == 0;
}

static int layer_available(const char *name)
{
    uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, NULL);
    VkLayerProperties *layers = calloc(n ? n : 1, sizeof *layers);
    if (!layers) return 0;
    vkEnumerateInstanceLayerProperties(&n, layers);
    int found = 0;
    for (uint32_t i = 0; i < n; i++) found |= strcmp(layers[i].layerName, name) == 0;
    free(layers);
    return found;
}

vka_result vka_instance_open(const vka_context_desc *desc, vka_context *ctx)
{
    vka_logger *lg = &ctx->logger;
    vka_result rc = VKA_SUCCESS;
    if (volkInitialize() != VK_SUCCESS)
        return vka_fail(lg, VKA_ERROR_NO_DEVICE,
                        "no Vulkan loader found (libvulkan.so.1): install the Debian packages "
                        "libvulkan1 and mesa-vulkan-drivers (lavapipe, a CPU Vulkan device)");

    uint32_t loader_version = volkGetInstanceVersion();
    uint32_t api = loader_version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_1;
    ctx->validation = want_validation(desc);
    if (ctx->validation && !layer_available(VALIDATION_LAYER))
        return vka_fail(lg, VKA_ERROR_UNSUPPORTED,
                        "validation was asked for but %s is not installed: install the Debian "
                        "package vulkan-validationlayers", VALIDATION_LAYER);

    const char *layers[] = {VALIDATION_LAYER};
    const char *extensions[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME};
    /* Synchronization validation catches missing barriers between dispatches;
     * VKANCHOR_SYNC_VALIDATION=0 turns it off (it is slow on big runs). */
    int sync = !vka_switch_off("VKANCHOR_SYNC_VALIDATION");
    VkValidationFeatureEnableEXT enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkValidationFeaturesEXT features = {
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .enabledValidationFeatureCount = sync ? 1 : 0,
        .pEnabledValidationFeatures = enables,
    };
    VkDebugUtilsMessengerCreateInfoEXT messenger_info = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .pNext = &features,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_debug_message,
        .pUserData = lg,
    };
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "vkanchor",
        .pEngineName = "vkanchor",
        .apiVersion = api,
    };
    VkInstanceCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        /* The messenger in pNext also reports instance creation itself. */
        .pNext = ctx->validation ? &messenger_info : NULL,
        .pApplicationInfo = &app,
        .enabledLayerCount = ctx->validation ? 1 : 0,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = ctx->validation ? 2 : 0,
        .ppEnabledExtensionNames = extensions,
    };
    VkResult vr = vkCreateInstance(&info, NULL, &ctx->instance);
    if (vr == VK_ERROR_INCOMPATIBLE_DRIVER)
        return vka_fail(lg, VKA_ERROR_NO_DEVICE,
                        "no Vulkan driver found: install mesa-vulkan-drivers (lavapipe, a CPU "
                        "Vulkan device) or your GPU vendor's Vulkan driver");
    VKA_VK_CHECK(lg, vr);
    volkLoadInstanceOnly(ctx->instance);
    if (ctx->validation) {
        messenger_info.pNext = NULL;
        VKA_VK_CHECK(lg, vkCreateDebugUtilsMessengerEXT(ctx->instance, &messenger_info, NULL,
                                                        &ctx->messenger));
    }
    uint32_t n = 0;
    VKA_VK_CHECK(lg, vkEnumeratePhysicalDevices(ctx->instance, &n, NULL));
    if (n == 0)
        rc = vka_fail(lg, VKA_ERROR_NO_DEVICE,
                      "no Vulkan device found: install mesa-vulkan-drivers (lavapipe, a CPU "
                      "Vulkan device) or your GPU vendor's Vulkan driver");
done:
    if (rc) vka_instance_close(ctx);
    return rc;
}

void vka_instance_close(vka_context *ctx)
{
    if (ctx->messenger) vkDestroyDebugUtilsMessengerEXT(ctx->instance, ctx->messenger, NULL);
    if (ctx->instance) vkDestroyInstance(ctx->instance, NULL);
    ctx->messenger = VK_NULL_HANDLE;
    ctx->instance = VK_NULL_HANDLE;
}

static int type_rank(vka_device_type t)
{
    switch (t) {
    case VKA_DEVICE_DISCRETE_GPU: return 4;
    case VKA_DEVICE_INTEGRATED_GPU: return 3;
    case VKA_DEVICE_VIRTUAL_GPU: return 2;
    case VKA_DEVICE_CPU: return 1;
    default: return 0;
    }
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

static int is_index(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

int vka_device_pick(const vka_device_info *infos, uint32_t n, const char *want)
{
    int chosen = -1;
    if (!want || !*want) {
        for (uint32_t i = 0; i < n; i++)
            if (chosen < 0 || type_rank(infos[i].type) > type_rank(infos[chosen].type)) chosen = (int)i;
    } else if (is_index(want)) {
        unsigned long idx = strtoul(want, NULL, 10);
        if (idx < n) chosen = (int)idx;
    } else {
        for (uint32_t i = 0; i < n && chosen < 0; i++)
            if (contains_nocase(infos[i].name, want)) chosen = (int)i;
    }
    return chosen;
}

/* Picks a device by index, by name substring, or the best one. */
static vka_result select_device(vka_context *ctx, const char *want)
{
    vka_logger *lg = &ctx->logger;
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(ctx->instance, &n, NULL);
    VkPhysicalDevice *phys = calloc(n, sizeof *phys);
    vka_device_info *infos = calloc(n, sizeof *infos);
    if (!phys || !infos) {
        free(phys);
        free(infos);
        return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory selecting a device");
    }
    vkEnumeratePhysicalDevices(ctx->instance, &n, phys);
    for (uint32_t i = 0; i < n; i++) vka_device_describe(phys[i], i, &infos[i]);

    int chosen = vka_device_pick(infos, n, want);
    vka_result rc = VKA_SUCCESS;
    if (chosen < 0) {
        char names[768] = "";
        size_t used = 0;
        for (uint32_t i = 0; i < n && used < sizeof names; i++)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%u: %s", i ? ", " : "", i,
                                     infos[i].name);
        rc = vka_fail(lg, VKA_ERROR_DEVICE_NOT_FOUND,
                      "no Vulkan device matches '%s' (give an index or part of a name; present: %s)",
                      want, names);
    } else {
        ctx->phys = phys[chosen];
        ctx->info = infos[chosen];
    }
    free(phys);
    free(infos);
    return rc;
}

static uint32_t find_memory_type(VkPhysicalDevice phys, VkMemoryPropertyFlags want,
                                 VkMemoryPropertyFlags fallback)
{
    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(phys, &mem);
    for (uint32_t i = 0; i < mem.memoryTypeCount; i++)
        if ((mem.memoryTypes[i].propertyFlags & want) == want) return i;
    for (uint32_t i = 0; i < mem.memoryTypeCount; i++)
        if ((mem.memoryTypes[i].propertyFlags & fallback) == fallback) return i;
    return UINT32_MAX;
}

static vka_result create_device(vka_context *ctx)
{
    vka_logger *lg = &ctx->logger;
    vka_result rc = VKA_SUCCESS;
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->phys, &nq, NULL);
    VkQueueFamilyProperties q[16];
    if (nq > 16) nq = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->phys, &nq, q);
    ctx->queue_family = UINT32_MAX;
    /* Prefer a family with compute and timestamps; any compute family otherwise. */
    for (uint32_t i = 0; i < nq; i++)
        if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
            (ctx->queue_family == UINT32_MAX || (q[i].timestampValidBits && !q[ctx->queue_family].timestampValidBits)))
            ctx->queue_family = i;
    if (ctx->queue_family == UINT32_MAX)
        return vka_fail(lg, VKA_ERROR_UNSUPPORTED, "device '%s' has no compute queue", ctx->info.name);

    float priority = 1.0f;
    VkDeviceQueueCreateInfo queue_info = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    /* The only optional core feature a shader uses: 64-bit integers (the packed conv kernels' pair stores). */
    VkPhysicalDeviceFeatures enabled = {.shaderInt64 = ctx->info.features.shader_int64 ? VK_TRUE : VK_FALSE};
    VkDeviceCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &queue_info,
        .pEnabledFeatures = &enabled,
    };
    /* fp16 arithmetic where offered (the conv forward's fp16 tiles, conv2d_gemm_coop.glsl, and
     * its emulation in the tests); with cooperative matrices also their extension and the
     * Vulkan memory model their SPIR-V declares. Promoted extensions are named where listed,
     * so that a Vulkan 1.1 instance may use the features. Should the driver refuse the device
     * with cooperative matrices, it is made again without them: the fp32 kernels do
     * everything the coop one does. */
    VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES, .vulkanMemoryModel = VK_TRUE};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .shaderFloat16 = VK_TRUE};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV, .pNext = &vmm,
        .cooperativeMatrix = VK_TRUE};
    const char *ext[3];
    uint32_t f16_ext = 0, coop_ext = 0;
    if (ctx->info.features.shader_float16) {
        info.pNext = &f16;
        if (vka_device_has_extension(ctx->phys, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME))
            ext[f16_ext++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
    }
    info.enabledExtensionCount = f16_ext;
    info.ppEnabledExtensionNames = ext;
    ctx->coopmat_nv = ctx->info.features.cooperative_matrix_nv && !vka_switch_off("VKANCHOR_COOPMAT");
    if (ctx->coopmat_nv) {
        ext[f16_ext + coop_ext++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
        if (vka_device_has_extension(ctx->phys, VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME))
            ext[f16_ext + coop_ext++] = VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME;
        f16.pNext = &coop; /* cooperative_matrix_nv implies shader_float16: f16 heads the chain */
        info.enabledExtensionCount = f16_ext + coop_ext;
        VkResult made = vkCreateDevice(ctx->phys, &info, NULL, &ctx->device);
        if (made != VK_SUCCESS) {
            vka_log(lg, VKA_LOG_WARNING, "%s: the device with cooperative matrices failed (%s); using fp32 kernels",
                    ctx->info.name, vka_vk_result_name(made));
            ctx->coopmat_nv = 0;
            ctx->device = VK_NULL_HANDLE;
            f16.pNext = NULL;
            info.enabledExtensionCount = f16_ext;
        }
    }
    if (!ctx->device) VKA_VK_CHECK(lg, vkCreateDevice(ctx->phys, &info, NULL, &ctx->device));
    volkLoadDevice(ctx->device);
    vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);

    VkCommandPoolCreateInfo pool_info = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->queue_family,
    };
    VKA_VK_CHECK(lg, vkCreateCommandPool(ctx->device, &pool_info, NULL, &ctx->command_pool));
    VkPipelineCacheCreateInfo cache_info = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    VKA_VK_CHECK(lg, vkCreatePipelineCache(ctx->device, &cache_info, NULL, &ctx->pipeline_cache));

    ctx->memory_type_device = find_memory_type(ctx->phys, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    ctx->memory_type_staging = find_memory_type(
        ctx->phys, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
    if (ctx->memory_type_staging == UINT32_MAX)
        return vka_fail(lg, VKA_ERROR_UNSUPPORTED, "device '%s' has no host-visible memory", ctx->info.name);
    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(ctx->phys, &mem);
    ctx->staging_coherent = (mem.memoryTypes[ctx->memory_type_staging].propertyFlags &
                             VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) != 0;
done:
    return rc;
}

vka_result vka_context_create(const vka_context_desc *desc, vka_context **out)
{
    static const vka_context_desc defaults = {0};
    if (!desc) desc = &defaults;
    *out = NULL;
    vka_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return VKA_ERROR_OUT_OF_HOST_MEMORY;
    ctx->logger.fn = desc->log;
    ctx->logger.user = desc->log_user;
    vka_result rc = VKA_SUCCESS;
    VKA_CHECK(vka_instance_open(desc, ctx));
    VKA_CHECK(select_device(ctx, desc->device));
    VKA_CHECK(create_device(ctx));
    vka_check_env_switches(&ctx->logger);
    ctx->limits = vka_limits_plan(&ctx->info.limits, &ctx->logger);
    VKA_CHECK(vka_arena_create(ctx, &(vka_arena_desc){.name = "staging", .kind = VKA_MEMORY_STAGING},
                               &ctx->staging));
    VKA_CHECK(vka_cmd_create(ctx, &(vka_cmd_desc){0}, &ctx->transfer_cmd));
    vka_log(&ctx->logger, VKA_LOG_INFO, "device %u: %s (%s, %s)%s", ctx->info.index, ctx->info.name,
            vka_device_type_string(ctx->info.type), ctx->info.driver_name,
            ctx->validation ? ", validation on" : "");
    *out = ctx;
done:
    if (rc) {
        /* Keep the message for a caller without a logger: there is no ctx to ask. */
        vka_context_destroy(ctx);
    }
    return rc;
}

void vka_context_destroy(vka_context *ctx)
{
    if (!ctx) return;
    if (ctx->device) vkDeviceWaitIdle(ctx->device);
    vka_cmd_destroy(ctx->transfer_cmd);
    vka_arena_destroy(ctx->staging);
    vka_kernel_cache_destroy(ctx);
    if (ctx->pipeline_cache) vkDestroyPipelineCache(ctx->device, ctx->pipeline_cache, NULL);
    if (ctx->command_pool) vkDestroyCommandPool(ctx->device, ctx->command_pool, NULL);
    if (ctx->device) vkDestroyDevice(ctx->device, NULL);
    vka_instance_close(ctx);
    free(ctx);
}

const vka_device_info *vka_context_device(const vka_context *ctx) { return &ctx->info; }
const vka_limits *vka_context_limits(const vka_context *ctx) { return &ctx->limits; }
const char *vka_context_last_error(const vka_context *ctx) { return ctx->logger.last_error; }
uint32_t vka_context_validation_messages(const vka_context *ctx) { return ctx->logger.validation_messages; }
