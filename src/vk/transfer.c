/* Synchronous host <-> device copies through the context's staging buffer. */
#include <string.h>

#include "vk/vk_internal.h"

#define STAGING_CHUNK ((uint64_t)32 << 20)

/* A staging tensor of at least `bytes` (grown once, kept for the context). */
static vka_result staging_reserve(vka_context *ctx, uint64_t bytes)
{
    if (ctx->staging_tensor.size >= bytes) return VKA_SUCCESS;
    /* Replace the arena: the old staging tensor is no longer referenced. */
    vka_arena_destroy(ctx->staging);
    ctx->staging = NULL;
    ctx->staging_tensor = (vka_tensor){0};
    vka_result rc = vka_arena_create(ctx, &(vka_arena_desc){.name = "staging", .kind = VKA_MEMORY_STAGING,
                                                            .block_size = bytes}, &ctx->staging);
    if (rc) return rc;
    return vka_arena_alloc(ctx->staging, bytes, &ctx->staging_tensor);
}

static vka_result check_range(vka_context *ctx, vka_tensor t, uint64_t offset, uint64_t bytes, const char *what)
{
    if (!t.block || bytes == 0 || offset > t.size || bytes > t.size - offset)
        return vka_fail(&ctx->logger, VKA_ERROR_INVALID_ARGUMENT,
                        "%s: %llu bytes at offset %llu do not fit a tensor of %llu bytes", what,
                        (unsigned long long)bytes, (unsigned long long)offset, (unsigned long long)t.size);
    return VKA_SUCCESS;
}

vka_result vka_upload(vka_context *ctx, vka_tensor dst, uint64_t offset, const void *src, uint64_t bytes)
{
    vka_result rc = check_range(ctx, dst, offset, bytes, "upload");
    if (rc) return rc;
    uint64_t chunk = bytes < STAGING_CHUNK ? bytes : STAGING_CHUNK;
    if ((rc = staging_reserve(ctx, chunk))) return rc;
    vka_cmd *cmd = ctx->transfer_cmd;
    for (uint64_t done = 0; done < bytes; done += chunk) {
        uint64_t n = bytes - done < chunk ? bytes - done : chunk;
        /* Host writes are made visible to the device by the submit that follows
         * (after a flush when the memory is not coherent). */
        memcpy(vka_tensor_map(ctx->staging_tensor), (const char *)src + done, n);
        if (!ctx->staging_coherent) {
            VkMappedMemoryRange range = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                                         .memory = ctx->staging_tensor.block->memory,
                                         .offset = 0, .size = VK_WHOLE_SIZE};
            vkFlushMappedMemoryRanges(ctx->device, 1, &range);
        }
        if ((rc = vka_cmd_reset(cmd))) return rc;
        vka_cmd_copy(cmd, vka_tensor_slice(dst, offset + done, n), vka_tensor_slice(ctx->staging_tensor, 0, n));
        vka_cmd_barrier(cmd, VKA_HAZARD_TRANSFER_TO_SHADER); /* copy writes -> later kernels */
        if ((rc = vka_cmd_submit(cmd)) || (rc = vka_cmd_wait(cmd))) return rc;
    }
    return VKA_SUCCESS;
}

vka_result vka_download(vka_context *ctx, vka_tensor src, uint64_t offset, void *dst, uint64_t bytes)
{
    vka_result rc = check_range(ctx, src, offset, bytes, "download");
    if (rc) return rc;
    uint64_t chunk = bytes < STAGING_CHUNK ? bytes : STAGING_CHUNK;
    if ((rc = staging_reserve(ctx, chunk))) return rc;
    vka_cmd *cmd = ctx->transfer_cmd;
    for (uint64_t done = 0; done < bytes; done += chunk) {
        uint64_t n = bytes - done < chunk ? bytes - done : chunk;
        if ((rc = vka_cmd_reset(cmd))) return rc;
        vka_cmd_copy(cmd, vka_tensor_slice(ctx->staging_tensor, 0, n), vka_tensor_slice(src, offset + done, n));
        vka_cmd_barrier(cmd, VKA_HAZARD_ANY_TO_HOST); /* copy writes -> host reads after the fence */
        if ((rc = vka_cmd_submit(cmd)) || (rc = vka_cmd_wait(cmd))) return rc;
        if (!ctx->staging_coherent) {
            VkMappedMemoryRange range = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE,
                                         .memory = ctx->staging_tensor.block->memory,
                                         .offset = 0, .size = VK_WHOLE_SIZE};
            vkInvalidateMappedMemoryRanges(ctx->device, 1, &range);
        }
        memcpy((char *)dst + done, vka_tensor_map(ctx->staging_tensor), n);
    }
    return VKA_SUCCESS;
}

vka_result vka_fill(vka_context *ctx, vka_tensor dst, uint32_t word)
{
    if (!dst.block || dst.size == 0 || dst.size % 4 || dst.offset % 4)
        return vka_fail(&ctx->logger, VKA_ERROR_INVALID_ARGUMENT, "fill: tensor of %llu bytes is not whole words",
                        (unsigned long long)dst.size);
    vka_cmd *cmd = ctx->transfer_cmd;
    vka_result rc = vka_cmd_reset(cmd);
    if (rc) return rc;
    if ((rc = vka_cmd_ensure_recording(cmd))) return rc;
    vka_cmd_record_fill(cmd, dst, word);
    vka_cmd_barrier(cmd, VKA_HAZARD_TRANSFER_TO_SHADER); /* fill writes -> later kernels */
    if ((rc = vka_cmd_submit(cmd))) return rc;
    return vka_cmd_wait(cmd);
}
