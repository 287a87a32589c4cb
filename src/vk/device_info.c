/* What a physical device is and offers: names, driver, limits, optional features. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vk_internal.h"

const char *vka_device_type_string(vka_device_type type)
{
    switch (type) {
    case VKA_DEVICE_INTEGRATED_GPU: return "integrated-gpu";
    case VKA_DEVICE_DISCRETE_GPU: return "discrete-gpu";
    case VKA_DEVICE_VIRTUAL_GPU: return "virtual-gpu";
    case VKA_DEVICE_CPU: return "cpu";
    default: return "other";
    }
}

static const char *vendor_name(uint32_t id)
{
    switch (id) {
    case 0x1002: return "AMD";
    case 0x10DE: return "NVIDIA";
    case 0x8086: return "Intel";
    case 0x13B5: return "Arm";
    case 0x5143: return "Qualcomm";
    case 0x1010: return "Imagination";
    case 0x106B: return "Apple";
    case 0x10005: return "Mesa";
    default: return "unknown";
    }
}

/* Vendors pack driverVersion differently; decode the common conventions. */
static void decode_driver_version(uint32_t vendor, uint32_t v, char *out, size_t n)
{
    if (vendor == 0x10DE)
        snprintf(out, n, "%u.%u.%u.%u", (v >> 22) & 0x3ff, (v >> 14) & 0xff, (v >> 6) & 0xff, v & 0x3f);
    else
        snprintf(out, n, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
                 VK_API_VERSION_PATCH(v));
}

static int has_extension(const VkExtensionProperties *ext, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(ext[i].extensionName, name) == 0) return 1;
    return 0;
}

int vka_device_has_extension(VkPhysicalDevice phys, const char *name)
{
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(phys, NULL, &n, NULL);
    VkExtensionProperties *ext = calloc(n ? n : 1, sizeof *ext);
    if (!ext) return 0;
    int found = vkEnumerateDeviceExtensionProperties(phys, NULL, &n, ext) == VK_SUCCESS && has_extension(ext, n, name);
    free(ext);
    return found;
}

static vka_device_type map_type(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return VKA_DEVICE_INTEGRATED_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return VKA_DEVICE_DISCRETE_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return VKA_DEVICE_VIRTUAL_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return VKA_DEVICE_CPU;
    default: return VKA_DEVICE_OTHER;
    }
}

/* Whether the NV extension lists the one tile shape conv2d_gemm_coop.glsl uses: A 16x16 and
 * B 16x8 in fp16, C and D 16x8 in fp32, subgroup scope. */
static int coop_nv_has_16x8x16(VkPhysicalDevice phys)
{
    uint32_t n = 0;
    if (vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(phys, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof *p);
    if (!p) return 0;
    for (uint32_t i = 0; i < n; i++) p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    int found = 0;
    if (vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(phys, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++)
            found = p[i].MSize == 16 && p[i].NSize == 8 && p[i].KSize == 16 &&
                    p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV && p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                    p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV && p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                    p[i].scope == VK_SCOPE_SUBGROUP_NV;
    free(p);
    return found;
}

/* Whether the NV cooperative matrices work in compute shaders. */
static int coop_nv_in_compute(VkPhysicalDevice phys)
{
    VkPhysicalDeviceCooperativeMatrixPropertiesNV cp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &cp};
    vkGetPhysicalDeviceProperties2(phys, &props);
    return (cp.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
}

void vka_device_describe(VkPhysicalDevice phys, uint32_t index, vka_device_info *info)
{
    memset(info, 0, sizeof *info);
    info->index = index;

    uint32_t next = 0;
    vkEnumerateDeviceExtensionProperties(phys, NULL, &next, NULL);
    VkExtensionProperties *ext = calloc(next ? next : 1, sizeof *ext);
    if (ext) vkEnumerateDeviceExtensionProperties(phys, NULL, &next, ext);
    else next = 0;

    VkPhysicalDeviceProperties base;
    vkGetPhysicalDeviceProperties(phys, &base);
    int api12 = base.apiVersion >= VK_API_VERSION_1_2, api13 = base.apiVersion >= VK_API_VERSION_1_3;

    /* Properties: chain only the structures the device can answer. */
    VkPhysicalDeviceSubgroupProperties subgroup = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceDriverProperties driver = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                         .pNext = &subgroup};
    int have_driver = api12 || has_extension(ext, next, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    if (have_driver) subgroup.pNext = &driver;
    vkGetPhysicalDeviceProperties2(phys, &props);

    VkPhysicalDevice16BitStorageFeatures storage16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDeviceShaderIntegerDotProductFeatures idot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                       .pNext = &storage16};
    void **tail = &storage16.pNext;
    int have_f16 = api12 || has_extension(ext, next, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    int have_idot = api13 || has_extension(ext, next, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES};
    int have_vmm = api12 || has_extension(ext, next, VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME);
    int have_coop_nv = has_extension(ext, next, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) &&
                       vkGetPhysicalDeviceCooperativeMatrixPropertiesNV != NULL;
    if (have_f16) { *tail = &f16; tail = &f16.pNext; }
    if (have_idot) { *tail = &idot; tail = &idot.pNext; }
    if (have_coop_nv) { *tail = &coop; tail = &coop.pNext; }
    if (have_vmm) { *tail = &vmm; tail = &vmm.pNext; }
    vkGetPhysicalDeviceFeatures2(phys, &feats);

    snprintf(info->name, sizeof info->name, "%s", base.deviceName);
    info->vendor_id = base.vendorID;
    info->device_id = base.deviceID;
    info->vendor = vendor_name(base.vendorID);
    info->type = map_type(base.deviceType);
    if (have_driver) {
        snprintf(info->driver_name, sizeof info->driver_name, "%s", driver.driverName);
        snprintf(info->driver_info, sizeof info->driver_info, "%s", driver.driverInfo);
    }
    decode_driver_version(base.vendorID, base.driverVersion, info->driver_version,
                          sizeof info->driver_version);
    snprintf(info->api_version, sizeof info->api_version, "%u.%u.%u",
             VK_API_VERSION_MAJOR(base.apiVersion), VK_API_VERSION_MINOR(base.apiVersion),
             VK_API_VERSION_PATCH(base.apiVersion));

    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(phys, &mem);
    info->heap_count = mem.memoryHeapCount < VKA_MAX_HEAPS ? mem.memoryHeapCount : VKA_MAX_HEAPS;
    for (uint32_t i = 0; i < info->heap_count; i++) {
        info->heap_size[i] = mem.memoryHeaps[i].size;
        info->heap_device_local[i] = (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
    }

    /* maxMemoryAllocationSize lives in Maintenance3 (core 1.1). */
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 props_m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                            .pNext = &m3};
    vkGetPhysicalDeviceProperties2(phys, &props_m3);

    const VkPhysicalDeviceLimits *l = &base.limits;
    vka_limits *o = &info->limits;
    o->max_workgroup_invocations = l->maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++) {
        o->max_workgroup_size[i] = l->maxComputeWorkGroupSize[i];
        o->max_workgroup_count[i] = l->maxComputeWorkGroupCount[i];
    }
    o->max_shared_memory_bytes = l->maxComputeSharedMemorySize;
    o->max_push_constants_bytes = l->maxPushConstantsSize;
    o->max_storage_buffer_range = l->maxStorageBufferRange;
    o->max_memory_allocation_size = m3.maxMemoryAllocationSize;
    o->max_texel_buffer_elements = l->maxTexelBufferElements;
    o->max_bound_descriptor_sets = l->maxBoundDescriptorSets;
    o->max_storage_buffers_per_stage = l->maxPerStageDescriptorStorageBuffers;
    o->min_storage_buffer_offset_alignment = l->minStorageBufferOffsetAlignment;
    o->min_texel_buffer_offset_alignment = l->minTexelBufferOffsetAlignment;
    o->non_coherent_atom_size = l->nonCoherentAtomSize;
    o->subgroup_size = subgroup.subgroupSize;
    info->timestamp_period_ns = l->timestampPeriod;

    vka_features *f = &info->features;
    f->shader_float16 = have_f16 && f16.shaderFloat16;
    f->shader_int64 = feats.features.shaderInt64 == VK_TRUE;
    f->storage_buffer_16bit = storage16.storageBuffer16BitAccess;
    int sg_compute = (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
    f->subgroup_basic = sg_compute && (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT);
    f->subgroup_arithmetic = sg_compute && (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    f->subgroup_shuffle = sg_compute && (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    f->integer_dot_product = have_idot && idot.shaderIntegerDotProduct;
    /* The Debian 12 headers predate VK_KHR_cooperative_matrix: detect it by name. */
    f->cooperative_matrix = has_extension(ext, next, "VK_KHR_cooperative_matrix");
    /* The coop kernel's SPIR-V declares the Vulkan memory model (GL_NV_cooperative_matrix needs it). */
    f->cooperative_matrix_nv = have_coop_nv && coop.cooperativeMatrix && f->shader_float16 && vmm.vulkanMemoryModel &&
                               f->subgroup_basic &&
                               subgroup.subgroupSize == 32 && coop_nv_has_16x8x16(phys) &&
                               coop_nv_in_compute(phys);

    VkFormatProperties fp;
    vkGetPhysicalDeviceFormatProperties(phys, VK_FORMAT_R32G32B32A32_SFLOAT, &fp);
    f->texel_buffer_rgba32f = (fp.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT) != 0;
    vkGetPhysicalDeviceFormatProperties(phys, VK_FORMAT_R32_SFLOAT, &fp);
    f->texel_buffer_r32f = (fp.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT) != 0;

    /* Timestamps: the compute queue family must report valid bits. */
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(phys, &nq, NULL);
    VkQueueFamilyProperties *q = calloc(nq ? nq : 1, sizeof *q);
    if (q) {
        vkGetPhysicalDeviceQueueFamilyProperties(phys, &nq, q);
        for (uint32_t i = 0; i < nq; i++)
            if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && q[i].timestampValidBits > 0) {
                f->timestamps = l->timestampPeriod > 0;
                break;
            }
        free(q);
    }
    free(ext);
}

vka_limits vka_limits_plan(const vka_limits *device_limits, vka_logger *lg)
{
    vka_limits p = *device_limits;
    const char *mode = getenv("VKANCHOR_LIMITS");
    if (mode && strcmp(mode, "min") == 0) {
        /* Vulkan 1.1 required minimums (spec table "Required Limits"). */
#define CLAMP(field, v) if (p.field > (v)) p.field = (v)
        CLAMP(max_workgroup_invocations, 128u);
        CLAMP(max_workgroup_size[0], 128u);
        CLAMP(max_workgroup_size[1], 128u);
        CLAMP(max_workgroup_size[2], 64u);
        CLAMP(max_workgroup_count[0], 65535u);
        CLAMP(max_workgroup_count[1], 65535u);
        CLAMP(max_workgroup_count[2], 65535u);
        CLAMP(max_shared_memory_bytes, 16384u);
        CLAMP(max_push_constants_bytes, 128u);
        CLAMP(max_storage_buffer_range, (uint64_t)1 << 27);
        CLAMP(max_memory_allocation_size, (uint64_t)1 << 30);
        CLAMP(max_texel_buffer_elements, 65536u);
#undef CLAMP
        vka_log(lg, VKA_LOG_INFO, "VKANCHOR_LIMITS=min: planning with the Vulkan spec minimum limits");
    } else if (mode && *mode) {
        vka_log(lg, VKA_LOG_WARNING, "VKANCHOR_LIMITS=%s is not known (only 'min'); using device limits", mode);
    }
    /* Test switch: a smaller storage-buffer range makes the chunking paths run on small tensors. */
    const char *range = getenv("VKANCHOR_MAX_STORAGE_RANGE");
    if (range && *range) {
        unsigned long long r = strtoull(range, NULL, 10);
        if (r >= 256 && r < p.max_storage_buffer_range) p.max_storage_buffer_range = r & ~255ull;
    }
    return p;
}

vka_result vka_device_list(vka_log_fn log, void *log_user, vka_device_info **out, uint32_t *count)
{
    vka_context_desc desc = {.validation = VKA_VALIDATION_OFF, .log = log, .log_user = log_user};
    /* Reuse the context's instance path without creating a device. */
    vka_context tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.logger.fn = log;
    tmp.logger.user = log_user;
    *out = NULL;
    *count = 0;
    vka_result rc = vka_instance_open(&desc, &tmp);
    if (rc) return rc;
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(tmp.instance, &n, NULL);
    vka_device_info *list = calloc(n ? n : 1, sizeof *list);
    VkPhysicalDevice *phys = calloc(n ? n : 1, sizeof *phys);
    if (!list || !phys) {
        free(list);
        free(phys);
        vka_instance_close(&tmp);
        return vka_fail(&tmp.logger, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory listing devices");
    }
    vkEnumeratePhysicalDevices(tmp.instance, &n, phys);
    for (uint32_t i = 0; i < n; i++) vka_device_describe(phys[i], i, &list[i]);
    free(phys);
    vka_instance_close(&tmp);
    *out = list;
    *count = n;
    return VKA_SUCCESS;
}

void vka_device_list_free(vka_device_info *list) { free(list); }
