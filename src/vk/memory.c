/* Arenas: device memory in blocks, sub-allocated with binding alignment.
 *
 * Each block is one VkDeviceMemory bound to one VkBuffer that covers it, so a
 * tensor is (block, offset, size) and binds with its own offset and range.
 * Blocks never exceed maxMemoryAllocationSize; one binding never exceeds
 * maxStorageBufferRange (ops chunk larger tensors, or refuse them clearly). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vk_internal.h"

#define DEFAULT_BLOCK_SIZE ((uint64_t)64 << 20)

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* One alignment that satisfies storage and texel bindings (and vec4 loads). */
static uint64_t binding_alignment(const vka_context *ctx)
{
    uint64_t a = 16;
    const vka_limits *l = &ctx->info.limits;
    if (l->min_storage_buffer_offset_alignment > a) a = l->min_storage_buffer_offset_alignment;
    if (l->min_texel_buffer_offset_alignment > a) a = l->min_texel_buffer_offset_alignment;
    return a;
}

vka_result vka_arena_create(vka_context *ctx, const vka_arena_desc *desc, vka_arena **out)
{
    *out = NULL;
    vka_arena *a = calloc(1, sizeof *a);
    if (!a) return vka_fail(&ctx->logger, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    a->ctx = ctx;
    snprintf(a->name, sizeof a->name, "%s", desc && desc->name ? desc->name : "unnamed");
    a->kind = desc ? desc->kind : VKA_MEMORY_DEVICE;
    a->block_size = desc && desc->block_size ? desc->block_size : DEFAULT_BLOCK_SIZE;
    if (a->block_size > ctx->limits.max_memory_allocation_size)
        a->block_size = ctx->limits.max_memory_allocation_size;
    *out = a;
    return VKA_SUCCESS;
}

static void block_destroy(vka_context *ctx, vka_block *b)
{
    if (!b) return;
    if (b->buffer) vkDestroyBuffer(ctx->device, b->buffer, NULL);
    if (b->memory) vkFreeMemory(ctx->device, b->memory, NULL); /* unmaps too */
    free(b);
}

void vka_arena_destroy(vka_arena *arena)
{
    if (!arena) return;
    for (uint32_t i = 0; i < arena->block_count; i++) block_destroy(arena->ctx, arena->blocks[i]);
    free(arena->blocks);
    free(arena);
}

static vka_result block_create(vka_arena *arena, uint64_t size, vka_block **out)
{
    vka_context *ctx = arena->ctx;
    vka_logger *lg = &ctx->logger;
    vka_result rc = VKA_SUCCESS;
    vka_block *b = calloc(1, sizeof *b);
    if (!b) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    b->arena = arena;
    b->size = size;
    b->serial = ++ctx->block_serials;
    VkBufferCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                 VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VKA_VK_CHECK(lg, vkCreateBuffer(ctx->device, &info, NULL, &b->buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, b->buffer, &req);
    uint32_t type = arena->kind == VKA_MEMORY_STAGING ? ctx->memory_type_staging : ctx->memory_type_device;
    if (!(req.memoryTypeBits & (1u << type)))
        type = ctx->memory_type_staging; /* every device has host-visible memory for buffers */
    VkMemoryAllocateInfo alloc = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = type,
    };
    VkResult vr = vkAllocateMemory(ctx->device, &alloc, NULL, &b->memory);
    if (vr == VK_ERROR_OUT_OF_DEVICE_MEMORY || vr == VK_ERROR_OUT_OF_HOST_MEMORY) {
        rc = vka_fail(lg, VKA_ERROR_OUT_OF_DEVICE_MEMORY,
                      "out of device memory: arena '%s' asked for %.1f MiB more (it holds %.1f MiB); "
                      "use a smaller --batch-size or model",
                      arena->name, (double)req.size / (1 << 20), (double)vka_arena_bytes(arena) / (1 << 20));
        goto done;
    }
    VKA_VK_CHECK(lg, vr);
    VKA_VK_CHECK(lg, vkBindBufferMemory(ctx->device, b->buffer, b->memory, 0));
    if (arena->kind == VKA_MEMORY_STAGING)
        VKA_VK_CHECK(lg, vkMapMemory(ctx->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped));
    *out = b;
done:
    if (rc) block_destroy(ctx, b);
    return rc;
}

vka_result vka_arena_alloc(vka_arena *arena, uint64_t size, vka_tensor *out)
{
    vka_context *ctx = arena->ctx;
    vka_logger *lg = &ctx->logger;
    memset(out, 0, sizeof *out);
    if (size == 0)
        return vka_fail(lg, VKA_ERROR_INVALID_ARGUMENT, "arena '%s': a tensor of 0 bytes was asked for",
                        arena->name);
    uint64_t max_alloc = ctx->limits.max_memory_allocation_size;
    if (size > max_alloc)
        return vka_fail(lg, VKA_ERROR_OUT_OF_DEVICE_MEMORY,
                        "arena '%s': a tensor of %.1f MiB exceeds the device's maxMemoryAllocationSize "
                        "(%.1f MiB); use a smaller batch size",
                        arena->name, (double)size / (1 << 20), (double)max_alloc / (1 << 20));
    uint64_t align = binding_alignment(ctx);
    /* Place in the last block if it fits; earlier blocks are full enough. */
    vka_block *b = arena->block_count ? arena->blocks[arena->block_count - 1] : NULL;
    uint64_t offset = b ? align_up(b->used, align) : 0;
    if (!b || offset + size > b->size) {
        uint64_t block_size = size > arena->block_size ? align_up(size, align) : arena->block_size;
        if (arena->block_count == arena->block_cap) {
            uint32_t cap = arena->block_cap ? arena->block_cap * 2 : 4;
            vka_block **blocks = realloc(arena->blocks, cap * sizeof *blocks);
            if (!blocks) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
            arena->blocks = blocks;
            arena->block_cap = cap;
        }
        vka_result rc = block_create(arena, block_size, &b);
        if (rc) return rc;
        arena->blocks[arena->block_count++] = b;
        offset = 0;
    }
    b->used = offset + size;
    *out = (vka_tensor){.block = b, .offset = offset, .size = size};
    return VKA_SUCCESS;
}

uint64_t vka_arena_bytes(const vka_arena *arena)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < arena->block_count; i++) total += arena->blocks[i]->size;
    return total;
}

vka_tensor vka_tensor_slice(vka_tensor t, uint64_t offset, uint64_t size)
{
    if (offset > t.size) offset = t.size;
    if (size > t.size - offset) size = t.size - offset;
    return (vka_tensor){.block = t.block, .offset = t.offset + offset, .size = size};
}

void *vka_tensor_map(vka_tensor t)
{
    if (!t.block || !t.block->mapped) return NULL;
    return (char *)t.block->mapped + t.offset;
}

VkBuffer vka_tensor_buffer(vka_tensor t) { return t.block ? t.block->buffer : VK_NULL_HANDLE; }
