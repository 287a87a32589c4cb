/* Command buffers: recording dispatches with their descriptor sets (made once per kernel
 * and bound tensors, and kept across recordings), barriers named for the hazard they
 * prevent, submission with a fence, and per-dispatch GPU time from timestamp queries. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vk_internal.h"

#define SETS_PER_POOL 64
#define DEFAULT_MAX_TIMED 512
/* Descriptor sets cached per cmd before a reset drops them all (VKA_CMD_SET_CACHE_MAX): a
 * training step binds ~300 (resnet20), evaluation and inference batches a few hundred more. */
#define SET_CACHE_MAX VKA_CMD_SET_CACHE_MAX

/* What a descriptor set holds: the kernel's set layout and, per binding, the tensor (by its
 * block's serial, never reused, so a set never outlives its buffer's identity) and its kind. */
typedef struct set_key {
    VkDescriptorSetLayout layout;
    uint32_t count, pad0;         /* the pads name what would be padding: hashed and compared as bytes, */
    struct {                      /* every byte must be copied with the key */
        uint64_t serial, offset, size;
        uint32_t kind, pad1;
    } bound[VKA_MAX_BINDINGS];
} set_key;
_Static_assert(sizeof(set_key) == 16 + VKA_MAX_BINDINGS * 32, "set_key without implicit padding");

typedef struct set_entry {
    set_key key;
    VkDescriptorSet set;          /* VK_NULL_HANDLE: a free slot */
} set_entry;

struct vka_cmd {
    vka_context *ctx;
    VkCommandBuffer cb;
    VkFence fence;
    enum { CMD_EMPTY, CMD_RECORDING, CMD_EXECUTABLE } state; /* executable: ended, can be resubmitted */
    int in_flight;                /* submitted, not yet waited for */
    vka_result status;            /* first op error while recording */

    /* Descriptor sets and their texel views: made by the first dispatch that binds a
     * kernel's layout to a list of tensors, found again by the next recordings (the
     * same step every step), dropped together when a reset finds SET_CACHE_MAX of them. */
    VkDescriptorPool *pools;
    uint32_t pool_count, pool_cap, active_pool;
    VkBufferView *views;
    uint32_t view_count, view_cap;
    set_entry *sets;              /* open addressing, set_cap a power of two */
    uint32_t set_count, set_cap;

    int timing;
    VkQueryPool queries;
    uint32_t max_timed, timed;
    const char **labels;
    const char *scope;            /* vka_cmd_set_scope's, for the next dispatches */
    const char **scopes;          /* the scope of each timed dispatch */
    uint64_t *bytes;              /* bytes bound to each timed dispatch */
    uint64_t *workgroups;         /* workgroups of each timed dispatch */
    double *ms;                   /* timings of the last completed submit */
    uint32_t ms_count;
};

vka_context *vka_cmd_context(vka_cmd *cmd) { return cmd->ctx; }
uint32_t vka_cmd_cached_sets(const vka_cmd *cmd) { return cmd->set_count; }
vka_result vka_cmd_status(const vka_cmd *cmd) { return cmd->status; }

vka_result vka_cmd_fail(vka_cmd *cmd, vka_result result, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    vka_fail(&cmd->ctx->logger, result, "%s", line);
    if (!cmd->status) cmd->status = result;
    return result;
}

vka_result vka_cmd_keep(vka_cmd *cmd, vka_result result)
{
    if (result && !cmd->status) cmd->status = result;
    return result;
}

vka_result vka_cmd_create(vka_context *ctx, const vka_cmd_desc *desc, vka_cmd **out)
{
    vka_logger *lg = &ctx->logger;
    vka_result rc = VKA_SUCCESS;
    *out = NULL;
    vka_cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    cmd->ctx = ctx;
    VkCommandBufferAllocateInfo alloc = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->command_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VKA_VK_CHECK(lg, vkAllocateCommandBuffers(ctx->device, &alloc, &cmd->cb));
    VkFenceCreateInfo fence_info = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VKA_VK_CHECK(lg, vkCreateFence(ctx->device, &fence_info, NULL, &cmd->fence));

    cmd->timing = desc && desc->timing && ctx->info.features.timestamps;
    if (cmd->timing) {
        cmd->max_timed = desc->max_timed_dispatches ? desc->max_timed_dispatches : DEFAULT_MAX_TIMED;
        VkQueryPoolCreateInfo q = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = 2 * cmd->max_timed,
        };
        VKA_VK_CHECK(lg, vkCreateQueryPool(ctx->device, &q, NULL, &cmd->queries));
        cmd->labels = calloc(cmd->max_timed, sizeof *cmd->labels);
        cmd->scopes = calloc(cmd->max_timed, sizeof *cmd->scopes);
        cmd->ms = calloc(cmd->max_timed, sizeof *cmd->ms);
        cmd->bytes = calloc(cmd->max_timed, sizeof *cmd->bytes);
        cmd->workgroups = calloc(cmd->max_timed, sizeof *cmd->workgroups);
        if (!cmd->labels || !cmd->scopes || !cmd->ms || !cmd->bytes || !cmd->workgroups) {
            rc = vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
            goto done;
        }
    }
    *out = cmd;
done:
    if (rc) vka_cmd_destroy(cmd);
    return rc;
}

/* Drops every cached descriptor set and view (no recorded or in-flight work may use them). */
static void release_descriptor_sets(vka_cmd *cmd)
{
    VkDevice dev = cmd->ctx->device;
    for (uint32_t i = 0; i < cmd->view_count; i++) vkDestroyBufferView(dev, cmd->views[i], NULL);
    cmd->view_count = 0;
    for (uint32_t i = 0; i < cmd->pool_count; i++) vkResetDescriptorPool(dev, cmd->pools[i], 0);
    /* Keep the pools (reset) for the next recording; start filling from the first. */
    cmd->active_pool = 0;
    if (cmd->sets) memset(cmd->sets, 0, (size_t)cmd->set_cap * sizeof *cmd->sets);
    cmd->set_count = 0;
}

void vka_cmd_destroy(vka_cmd *cmd)
{
    if (!cmd) return;
    VkDevice dev = cmd->ctx->device;
    if (cmd->in_flight) vkWaitForFences(dev, 1, &cmd->fence, VK_TRUE, UINT64_MAX);
    release_descriptor_sets(cmd);
    for (uint32_t i = 0; i < cmd->pool_count; i++) vkDestroyDescriptorPool(dev, cmd->pools[i], NULL);
    free(cmd->pools);
    free(cmd->views);
    free(cmd->sets);
    if (cmd->queries) vkDestroyQueryPool(dev, cmd->queries, NULL);
    free(cmd->labels);
    free(cmd->scopes);
    free(cmd->bytes);
    free(cmd->workgroups);
    free(cmd->ms);
    if (cmd->fence) vkDestroyFence(dev, cmd->fence, NULL);
    if (cmd->cb) vkFreeCommandBuffers(dev, cmd->ctx->command_pool, 1, &cmd->cb);
    free(cmd);
}

vka_result vka_cmd_reset(vka_cmd *cmd)
{
    vka_result rc = vka_cmd_wait(cmd);
    if (rc) return rc;
    if (cmd->state == CMD_RECORDING) vkEndCommandBuffer(cmd->cb);
    vkResetCommandBuffer(cmd->cb, 0);
    if (cmd->set_count >= SET_CACHE_MAX) release_descriptor_sets(cmd);
    cmd->state = CMD_EMPTY;
    cmd->timed = 0;
    cmd->scope = NULL;
    cmd->status = VKA_SUCCESS;
    return VKA_SUCCESS;
}

vka_result vka_cmd_ensure_recording(vka_cmd *cmd)
{
    if (cmd->status) return cmd->status;
    if (cmd->state == CMD_RECORDING) return VKA_SUCCESS;
    if (cmd->state == CMD_EXECUTABLE)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT,
                            "recording into a submitted command buffer: call vka_cmd_reset first");
    vka_logger *lg = &cmd->ctx->logger;
    vka_result rc = VKA_SUCCESS;
    if (cmd->in_flight) VKA_CHECK(vka_cmd_wait(cmd));
    VkCommandBufferBeginInfo begin = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    VKA_VK_CHECK(lg, vkBeginCommandBuffer(cmd->cb, &begin));
    cmd->state = CMD_RECORDING;
    if (cmd->timing) vkCmdResetQueryPool(cmd->cb, cmd->queries, 0, 2 * cmd->max_timed);
    /* Submissions on one queue are not memory-ordered by themselves: make all
     * earlier shader and transfer writes visible to this buffer's work. */
    VkMemoryBarrier all = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(cmd->cb, stages, stages, 0, 1, &all, 0, NULL, 0, NULL);
done:
    if (rc && !cmd->status) cmd->status = rc;
    return rc;
}

void vka_cmd_barrier(vka_cmd *cmd, vka_hazard hazard)
{
    if (vka_cmd_ensure_recording(cmd)) return;
    VkPipelineStageFlags src = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, dst = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
    VkMemoryBarrier b = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    const VkAccessFlags shader_rw = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    const VkAccessFlags transfer_rw = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    switch (hazard) {
    case VKA_HAZARD_SHADER_TO_SHADER:
        b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        b.dstAccessMask = shader_rw;
        break;
    case VKA_HAZARD_TRANSFER_TO_SHADER:
        src = VK_PIPELINE_STAGE_TRANSFER_BIT;
        b.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
        b.dstAccessMask = shader_rw;
        break;
    case VKA_HAZARD_SHADER_TO_TRANSFER:
        dst = VK_PIPELINE_STAGE_TRANSFER_BIT;
        b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        b.dstAccessMask = transfer_rw;
        break;
    case VKA_HAZARD_TRANSFER_TO_TRANSFER:
        src = dst = VK_PIPELINE_STAGE_TRANSFER_BIT;
        b.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
        b.dstAccessMask = transfer_rw;
        break;
    case VKA_HAZARD_ANY_TO_HOST:
        src = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
        dst = VK_PIPELINE_STAGE_HOST_BIT;
        b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
        b.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        break;
    }
    vkCmdPipelineBarrier(cmd->cb, src, dst, 0, 1, &b, 0, NULL, 0, NULL);
}

static vka_result allocate_set(vka_cmd *cmd, VkDescriptorSetLayout layout, VkDescriptorSet *set)
{
    vka_context *ctx = cmd->ctx;
    vka_logger *lg = &ctx->logger;
    vka_result rc = VKA_SUCCESS;
    /* Try the pools in order; a full one moves us to the next, or a new one. */
    while (cmd->active_pool < cmd->pool_count) {
        VkDescriptorSetAllocateInfo info = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
            .descriptorPool = cmd->pools[cmd->active_pool],
            .descriptorSetCount = 1,
            .pSetLayouts = &layout,
        };
        VkResult vr = vkAllocateDescriptorSets(ctx->device, &info, set);
        if (vr == VK_SUCCESS) return VKA_SUCCESS;
        if (vr != VK_ERROR_OUT_OF_POOL_MEMORY && vr != VK_ERROR_FRAGMENTED_POOL)
            VKA_VK_CHECK(lg, vr);
        cmd->active_pool++;
    }
    if (cmd->pool_count == cmd->pool_cap) {
        uint32_t cap = cmd->pool_cap ? 2 * cmd->pool_cap : 4;
        VkDescriptorPool *pools = realloc(cmd->pools, cap * sizeof *pools);
        if (!pools) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
        cmd->pools = pools;
        cmd->pool_cap = cap;
    }
    VkDescriptorPoolSize sizes[] = {
        {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * VKA_MAX_BINDINGS},
        {VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, SETS_PER_POOL * VKA_MAX_BINDINGS},
    };
    VkDescriptorPoolCreateInfo pool_info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = SETS_PER_POOL,
        .poolSizeCount = 2,
        .pPoolSizes = sizes,
    };
    VKA_VK_CHECK(lg, vkCreateDescriptorPool(ctx->device, &pool_info, NULL, &cmd->pools[cmd->pool_count]));
    cmd->active_pool = cmd->pool_count++;
    VkDescriptorSetAllocateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = cmd->pools[cmd->active_pool],
        .descriptorSetCount = 1,
        .pSetLayouts = &layout,
    };
    VKA_VK_CHECK(lg, vkAllocateDescriptorSets(ctx->device, &info, set));
done:
    return rc;
}

static vka_result create_view(vka_cmd *cmd, vka_tensor t, VkFormat format, uint32_t texel_bytes,
                              VkBufferView *out)
{
    vka_logger *lg = &cmd->ctx->logger;
    vka_result rc = VKA_SUCCESS;
    if (cmd->view_count == cmd->view_cap) {
        uint32_t cap = cmd->view_cap ? 2 * cmd->view_cap : 16;
        VkBufferView *views = realloc(cmd->views, cap * sizeof *views);
        if (!views) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
        cmd->views = views;
        cmd->view_cap = cap;
    }
    VkBufferViewCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
        .buffer = vka_tensor_buffer(t),
        .format = format,
        .offset = t.offset,
        .range = t.size / texel_bytes * texel_bytes,
    };
    VKA_VK_CHECK(lg, vkCreateBufferView(cmd->ctx->device, &info, NULL, out));
    cmd->views[cmd->view_count++] = *out;
done:
    return rc;
}

/* The device limits a binding must meet (checked on every dispatch, cached set or not). */
static vka_result check_binding(vka_cmd *cmd, const char *name, uint32_t i, vka_binding_kind kind, vka_tensor t)
{
    const vka_context *ctx = cmd->ctx;
    const vka_limits *dl = &ctx->info.limits;
    if (!t.block || t.size == 0)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: binding %u has no tensor", name, i);
    if (kind == VKA_BIND_STORAGE) {
        if (t.size > ctx->limits.max_storage_buffer_range)
            return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED,
                                "%s: binding %u is %llu bytes, over maxStorageBufferRange (%llu)", name, i,
                                (unsigned long long)t.size, (unsigned long long)ctx->limits.max_storage_buffer_range);
        if (t.offset % dl->min_storage_buffer_offset_alignment)
            return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: binding %u offset %llu is not aligned to %llu",
                                name, i, (unsigned long long)t.offset,
                                (unsigned long long)dl->min_storage_buffer_offset_alignment);
        return VKA_SUCCESS;
    }
    uint32_t texel = kind == VKA_BIND_TEXEL_RGBA32F ? 16 : 4;
    if (t.size / texel > ctx->limits.max_texel_buffer_elements || t.size < texel)
        return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED, "%s: binding %u holds %llu texels (device allows 1..%u)",
                            name, i, (unsigned long long)(t.size / texel), ctx->limits.max_texel_buffer_elements);
    if (t.offset % dl->min_texel_buffer_offset_alignment)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: texel binding %u offset %llu is not aligned to %llu",
                            name, i, (unsigned long long)t.offset,
                            (unsigned long long)dl->min_texel_buffer_offset_alignment);
    return VKA_SUCCESS;
}

static uint64_t hash_key(const set_key *key) { return vka_fnv1a(VKA_FNV1A_BASIS, key, sizeof *key); }

/* The cache slot of key: its set, or the free slot where it goes (the table grows to
 * stay at most half full). */
static vka_result find_set(vka_cmd *cmd, const set_key *key, set_entry **out)
{
    if (2 * (cmd->set_count + 1) > cmd->set_cap) {
        uint32_t cap = cmd->set_cap ? 2 * cmd->set_cap : 512;
        set_entry *sets = calloc(cap, sizeof *sets);
        if (!sets) return vka_fail(&cmd->ctx->logger, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
        for (uint32_t i = 0; i < cmd->set_cap; i++) {
            if (!cmd->sets[i].set) continue;
            uint32_t j = (uint32_t)hash_key(&cmd->sets[i].key) & (cap - 1);
            while (sets[j].set) j = (j + 1) & (cap - 1);
            sets[j] = cmd->sets[i];
        }
        free(cmd->sets);
        cmd->sets = sets;
        cmd->set_cap = cap;
    }
    uint32_t j = (uint32_t)hash_key(key) & (cmd->set_cap - 1);
    while (cmd->sets[j].set && memcmp(&cmd->sets[j].key, key, sizeof *key) != 0) j = (j + 1) & (cmd->set_cap - 1);
    *out = &cmd->sets[j];
    return VKA_SUCCESS;
}

/* Makes the set of a cache miss: allocated, its texel views created, written. */
static vka_result make_set(vka_cmd *cmd, const vka_kernel *k, const vka_tensor *tensors, set_entry *entry)
{
    const set_key *key = &entry->key;
    VkDescriptorSet set;
    vka_result rc = allocate_set(cmd, k->set_layout, &set);
    if (rc) return rc;
    VkDescriptorBufferInfo buffers[VKA_MAX_BINDINGS];
    VkBufferView views[VKA_MAX_BINDINGS];
    VkWriteDescriptorSet writes[VKA_MAX_BINDINGS];
    for (uint32_t i = 0; i < key->count; i++) {
        vka_tensor t = tensors[i];
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set, .dstBinding = i, .descriptorCount = 1,
        };
        vka_binding_kind kind = k->desc.bindings[i];
        if (kind == VKA_BIND_STORAGE) {
            buffers[i] = (VkDescriptorBufferInfo){vka_tensor_buffer(t), t.offset, t.size};
            writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
            writes[i].pBufferInfo = &buffers[i];
        } else {
            uint32_t texel = kind == VKA_BIND_TEXEL_RGBA32F ? 16 : 4;
            VkFormat format = kind == VKA_BIND_TEXEL_RGBA32F ? VK_FORMAT_R32G32B32A32_SFLOAT : VK_FORMAT_R32_SFLOAT;
            if ((rc = create_view(cmd, t, format, texel, &views[i]))) return rc;
            writes[i].descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
            writes[i].pTexelBufferView = &views[i];
        }
    }
    vkUpdateDescriptorSets(cmd->ctx->device, key->count, writes, 0, NULL);
    entry->set = set;
    cmd->set_count++;
    return VKA_SUCCESS;
}

vka_result vka_cmd_dispatch(vka_cmd *cmd, vka_kernel *k, const vka_tensor *tensors,
                            uint32_t num_tensors, const void *push,
                            uint32_t groups_x, uint32_t groups_y, uint32_t groups_z)
{
    vka_result rc = vka_cmd_ensure_recording(cmd);
    if (rc) return rc;
    vka_context *ctx = cmd->ctx;
    const char *name = k->desc.name;
    if (num_tensors != k->desc.num_bindings)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "%s: %u tensors given for %u bindings", name,
                            num_tensors, k->desc.num_bindings);
    uint32_t groups[3] = {groups_x, groups_y, groups_z};
    for (int i = 0; i < 3; i++)
        if (groups[i] == 0 || groups[i] > ctx->limits.max_workgroup_count[i])
            return vka_cmd_fail(cmd, VKA_ERROR_LIMIT_EXCEEDED,
                                "%s: %u workgroups in dimension %d (device allows 1..%u)", name, groups[i], i,
                                ctx->limits.max_workgroup_count[i]);

    for (uint32_t i = 0; i < num_tensors; i++)
        if ((rc = check_binding(cmd, name, i, k->desc.bindings[i], tensors[i]))) return rc;
    set_key key;
    memset(&key, 0, sizeof key); /* hashed and compared as bytes */
    key.layout = k->set_layout;
    key.count = num_tensors;
    for (uint32_t i = 0; i < num_tensors; i++)
        key.bound[i].serial = tensors[i].block->serial, key.bound[i].offset = tensors[i].offset,
        key.bound[i].size = tensors[i].size, key.bound[i].kind = (uint32_t)k->desc.bindings[i];
    set_entry *entry = NULL;
    if ((rc = find_set(cmd, &key, &entry))) return vka_cmd_fail(cmd, rc, "%s: no descriptor set", name);
    if (!entry->set) {
        entry->key = key;
        if ((rc = make_set(cmd, k, tensors, entry))) return vka_cmd_fail(cmd, rc, "%s: no descriptor set", name);
    }
    VkDescriptorSet set = entry->set;

    int timed = cmd->timing && cmd->timed < cmd->max_timed;
    if (timed)
        vkCmdWriteTimestamp(cmd->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, cmd->queries, 2 * cmd->timed);
    vkCmdBindPipeline(cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
    vkCmdBindDescriptorSets(cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout, 0, 1, &set, 0, NULL);
    if (k->desc.push_bytes)
        vkCmdPushConstants(cmd->cb, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, k->desc.push_bytes, push);
    vkCmdDispatch(cmd->cb, groups_x, groups_y, groups_z);
    if (timed) {
        vkCmdWriteTimestamp(cmd->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, cmd->queries, 2 * cmd->timed + 1);
        uint64_t bytes = 0; /* each distinct binding once (a bias slot may alias the weights) */
        for (uint32_t i = 0; i < num_tensors; i++) {
            int seen = 0;
            for (uint32_t j = 0; j < i; j++)
                seen |= tensors[j].block == tensors[i].block && tensors[j].offset == tensors[i].offset;
            if (!seen) bytes += tensors[i].size;
        }
        cmd->bytes[cmd->timed] = bytes;
        cmd->workgroups[cmd->timed] = (uint64_t)groups_x * groups_y * groups_z;
        cmd->scopes[cmd->timed] = cmd->scope;
        cmd->labels[cmd->timed++] = name;
    }
    return VKA_SUCCESS;
}

vka_result vka_cmd_copy(vka_cmd *cmd, vka_tensor dst, vka_tensor src)
{
    vka_result rc = vka_cmd_ensure_recording(cmd);
    if (rc) return rc;
    if (dst.size != src.size || !dst.block || !src.block)
        return vka_cmd_fail(cmd, VKA_ERROR_INVALID_ARGUMENT, "copy: sizes differ (%llu vs %llu bytes)",
                            (unsigned long long)dst.size, (unsigned long long)src.size);
    VkBufferCopy region = {src.offset, dst.offset, src.size};
    vkCmdCopyBuffer(cmd->cb, vka_tensor_buffer(src), vka_tensor_buffer(dst), 1, &region);
    return VKA_SUCCESS;
}

vka_result vka_cmd_submit(vka_cmd *cmd)
{
    vka_logger *lg = &cmd->ctx->logger;
    vka_result rc = VKA_SUCCESS;
    if (cmd->status) return cmd->status; /* never run a half-recorded step */
    if (cmd->state == CMD_EMPTY) VKA_CHECK(vka_cmd_ensure_recording(cmd));
    if (cmd->in_flight) VKA_CHECK(vka_cmd_wait(cmd));
    if (cmd->state == CMD_RECORDING) {
        VKA_VK_CHECK(lg, vkEndCommandBuffer(cmd->cb));
        cmd->state = CMD_EXECUTABLE; /* can be submitted again until reset */
    }
    VKA_VK_CHECK(lg, vkResetFences(cmd->ctx->device, 1, &cmd->fence));
    VkSubmitInfo submit = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cmd->cb,
    };
    VKA_VK_CHECK(lg, vkQueueSubmit(cmd->ctx->queue, 1, &submit, cmd->fence));
    cmd->in_flight = 1;
done:
    return rc;
}

vka_result vka_cmd_wait(vka_cmd *cmd)
{
    vka_logger *lg = &cmd->ctx->logger;
    vka_result rc = VKA_SUCCESS;
    if (!cmd->in_flight) return VKA_SUCCESS;
    VKA_VK_CHECK(lg, vkWaitForFences(cmd->ctx->device, 1, &cmd->fence, VK_TRUE, UINT64_MAX));
    cmd->in_flight = 0;
    cmd->ms_count = 0;
    if (cmd->timing && cmd->timed) {
        uint64_t *ticks = calloc(2 * cmd->timed, sizeof *ticks);
        if (!ticks) return vka_fail(lg, VKA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
        VkResult vr = vkGetQueryPoolResults(cmd->ctx->device, cmd->queries, 0, 2 * cmd->timed,
                                            2 * cmd->timed * sizeof *ticks, ticks, sizeof *ticks,
                                            VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
        if (vr == VK_SUCCESS) {
            double ns = cmd->ctx->info.timestamp_period_ns;
            for (uint32_t i = 0; i < cmd->timed; i++)
                cmd->ms[i] = (double)(ticks[2 * i + 1] - ticks[2 * i]) * ns * 1e-6;
            cmd->ms_count = cmd->timed;
        }
        free(ticks);
    }
done:
    return rc;
}

void vka_cmd_set_scope(vka_cmd *cmd, const char *scope) { cmd->scope = scope; }

uint32_t vka_cmd_timings(vka_cmd *cmd, vka_timing *out, uint32_t max)
{
    uint32_t n = cmd->ms_count < max ? cmd->ms_count : max;
    for (uint32_t i = 0; i < n; i++) out[i] = (vka_timing){cmd->labels[i], cmd->ms[i], cmd->bytes[i], cmd->scopes[i], cmd->workgroups[i]};
    return cmd->ms_count;
}

vka_result vka_cmd_record_fill(vka_cmd *cmd, vka_tensor dst, uint32_t word)
{
    vka_result rc = vka_cmd_ensure_recording(cmd);
    if (rc) return rc;
    vkCmdFillBuffer(cmd->cb, vka_tensor_buffer(dst), dst.offset, dst.size, word);
    return VKA_SUCCESS;
}
