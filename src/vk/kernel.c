/* Compute pipelines from embedded SPIR-V, checked before they are built:
 * the C description (bindings, push-constant size) against the module's own
 * interface, and workgroup size, shared memory and push constants against the
 * planned device limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vk_internal.h"

vka_result vka_kernel_check(vka_context *ctx, const vka_kernel_desc *d)
{
    vka_logger *lg = &ctx->logger;
    const vka_limits *l = &ctx->limits;
    const char *name = d->name ? d->name : "kernel";
    if (d->push_bytes > l->max_push_constants_bytes)
        return vka_fail(lg, VKA_ERROR_LIMIT_EXCEEDED,
                        "%s: %u bytes of push constants, over the device limit of %u", name, d->push_bytes,
                        l->max_push_constants_bytes);
    if (d->push_bytes % 4)
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "%s: push-constant size %u is not a multiple of 4",
                        name, d->push_bytes);
    uint64_t invocations = 1;
    for (int i = 0; i < 3; i++) {
        uint32_t s = d->local_size[i] ? d->local_size[i] : 1;
        if (s > l->max_workgroup_size[i])
            return vka_fail(lg, VKA_ERROR_LIMIT_EXCEEDED, "%s: workgroup size %u in dimension %d, over the limit %u",
                            name, s, i, l->max_workgroup_size[i]);
        invocations *= s;
    }
    if (invocations > l->max_workgroup_invocations)
        return vka_fail(lg, VKA_ERROR_LIMIT_EXCEEDED, "%s: %llu invocations per workgroup, over the limit %u", name,
                        (unsigned long long)invocations, l->max_workgroup_invocations);
    if (d->shared_bytes > l->max_shared_memory_bytes)
        return vka_fail(lg, VKA_ERROR_LIMIT_EXCEEDED, "%s: %u bytes of shared memory, over the limit %u", name,
                        d->shared_bytes, l->max_shared_memory_bytes);
    uint32_t storage = 0;
    for (uint32_t b = 0; b < d->num_bindings && b < VKA_MAX_BINDINGS; b++) storage += d->bindings[b] == VKA_BIND_STORAGE;
    if (d->num_bindings > VKA_MAX_BINDINGS || storage > l->max_storage_buffers_per_stage)
        return vka_fail(lg, VKA_ERROR_LIMIT_EXCEEDED, "%s: %u bindings (%u storage buffers; the device allows %u)",
                        name, d->num_bindings, storage, l->max_storage_buffers_per_stage);
    if (d->num_spec > VKA_MAX_SPEC)
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "%s: %u specialization constants (at most %d)", name,
                        d->num_spec, VKA_MAX_SPEC);

    vka_spirv_interface iface;
    char why[256] = "";
    vka_result rc = vka_spirv_reflect(d->spirv, d->spirv_bytes, &iface, why, sizeof why);
    if (rc) return vka_fail(lg, rc, "%s: %s", name, why);
    if (iface.push_bytes != d->push_bytes)
        return vka_fail(lg, VKA_ERROR_SHADER_MISMATCH,
                        "%s: the shader's push-constant block is %u bytes but the C struct is %u", name,
                        iface.push_bytes, d->push_bytes);
    if (iface.num_bindings != d->num_bindings)
        return vka_fail(lg, VKA_ERROR_SHADER_MISMATCH, "%s: the shader has %u bindings but %u are declared", name,
                        iface.num_bindings, d->num_bindings);
    for (uint32_t b = 0; b < d->num_bindings; b++) {
        int texel_c = d->bindings[b] != VKA_BIND_STORAGE, texel_s = iface.bindings[b] != VKA_BIND_STORAGE;
        if (!iface.binding_present[b] || texel_c != texel_s)
            return vka_fail(lg, VKA_ERROR_SHADER_MISMATCH, "%s: binding %u is a %s in the shader but declared a %s",
                            name, b, !iface.binding_present[b] ? "gap" : texel_s ? "texel buffer" : "storage buffer",
                            texel_c ? "texel buffer" : "storage buffer");
    }
    for (int i = 0; i < 3; i++)
        if (d->local_size[i] > 1 && !iface.local_size_ids[i])
            return vka_fail(lg, VKA_ERROR_SHADER_MISMATCH,
                            "%s: workgroup size %d is set from C but the shader has no local_size_%c_id = %d",
                            name, i, "xyz"[i], i);
    return VKA_SUCCESS;
}

vka_result vka_kernel_create(vka_context *ctx, const vka_kernel_desc *desc, vka_kernel **out)
{
    vka_logger *lg = &ctx->logger;
    vka_result rc = vka_kernel_check(ctx, desc);
    *out = NULL;
    if (rc) return rc;
    VkShaderModule module = VK_NULL_HANDLE;
    vka_kernel *k = calloc(1, sizeof *k);
    if (!k) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    k->desc = *desc;

    VkDescriptorSetLayoutBinding bindings[VKA_MAX_BINDINGS];
    for (uint32_t b = 0; b < desc->num_bindings; b++)
        bindings[b] = (VkDescriptorSetLayoutBinding){
            .binding = b,
            .descriptorType = desc->bindings[b] == VKA_BIND_STORAGE ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
                                                                     : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo set_info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = desc->num_bindings,
        .pBindings = bindings,
    };
    VKA_VK_CHECK(lg, vkCreateDescriptorSetLayout(ctx->device, &set_info, NULL, &k->set_layout));
    VkPushConstantRange range = {VK_SHADER_STAGE_COMPUTE_BIT, 0, desc->push_bytes};
    VkPipelineLayoutCreateInfo layout_info = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &k->set_layout,
        .pushConstantRangeCount = desc->push_bytes ? 1 : 0,
        .pPushConstantRanges = &range,
    };
    VKA_VK_CHECK(lg, vkCreatePipelineLayout(ctx->device, &layout_info, NULL, &k->layout));

    VkShaderModuleCreateInfo module_info = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = desc->spirv_bytes,
        .pCode = desc->spirv,
    };
    VKA_VK_CHECK(lg, vkCreateShaderModule(ctx->device, &module_info, NULL, &module));

    /* Constant ids 0..2: workgroup size; 3..: the variant's own constants.
     * Only the sizes the shader declares as spec constants are passed. */
    vka_spirv_interface iface;
    char why[8];
    vka_spirv_reflect(desc->spirv, desc->spirv_bytes, &iface, why, sizeof why);
    uint32_t values[3 + VKA_MAX_SPEC];
    VkSpecializationMapEntry entries[3 + VKA_MAX_SPEC];
    uint32_t count = 0;
    for (uint32_t i = 0; i < 3; i++)
        if (iface.local_size_ids[i]) {
            values[count] = desc->local_size[i] ? desc->local_size[i] : 1;
            entries[count] = (VkSpecializationMapEntry){i, count * 4, 4};
            count++;
        }
    for (uint32_t i = 0; i < desc->num_spec; i++) {
        values[count] = desc->spec[i];
        entries[count] = (VkSpecializationMapEntry){3 + i, count * 4, 4};
        count++;
    }
    VkSpecializationInfo spec = {count, entries, count * 4, values};
    VkComputePipelineCreateInfo pipe_info = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = module,
            .pName = "main",
            .pSpecializationInfo = count ? &spec : NULL,
        },
        .layout = k->layout,
    };
    VKA_VK_CHECK(lg, vkCreateComputePipelines(ctx->device, ctx->pipeline_cache, 1, &pipe_info, NULL, &k->pipeline));
    *out = k;
done:
    if (module) vkDestroyShaderModule(ctx->device, module, NULL);
    if (rc) vka_kernel_destroy(ctx, k);
    return rc;
}

void vka_kernel_destroy(vka_context *ctx, vka_kernel *k)
{
    if (!k) return;
    if (k->pipeline) vkDestroyPipeline(ctx->device, k->pipeline, NULL);
    if (k->layout) vkDestroyPipelineLayout(ctx->device, k->layout, NULL);
    if (k->set_layout) vkDestroyDescriptorSetLayout(ctx->device, k->set_layout, NULL);
    free(k);
}
