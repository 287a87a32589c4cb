/* The context's kernels, found by their whole desc: an op describes the variant it wants
 * (SPIR-V, specialization values, workgroup size, bindings) and gets the pipeline built for
 * an equal desc, or a new one. Keyed by content, two variants can never share a pipeline by
 * mistake, and an op family needs no numbering of its variants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vk_internal.h"

#define INITIAL_CAPACITY 256u

static uint32_t local_size(const vka_kernel_desc *d, int i) { return d->local_size[i] ? d->local_size[i] : 1; }

/* The hash of what desc_equal compares: the name's characters, then the rest as one zeroed key. */
static uint64_t desc_hash(const vka_kernel_desc *d)
{
    const char *name = d->name ? d->name : "";
    struct {
        uint64_t spirv, spirv_bytes;
        uint32_t num_bindings, bindings[VKA_MAX_BINDINGS], push_bytes, local_size[3], shared_bytes, num_spec;
        uint32_t spec[VKA_MAX_SPEC];
    } key;
    memset(&key, 0, sizeof key);
    key.spirv = (uintptr_t)d->spirv, key.spirv_bytes = d->spirv_bytes;
    key.num_bindings = d->num_bindings, key.push_bytes = d->push_bytes, key.shared_bytes = d->shared_bytes;
    key.num_spec = d->num_spec;
    for (uint32_t b = 0; b < d->num_bindings && b < VKA_MAX_BINDINGS; b++) key.bindings[b] = (uint32_t)d->bindings[b];
    for (int i = 0; i < 3; i++) key.local_size[i] = local_size(d, i);
    for (uint32_t i = 0; i < d->num_spec && i < VKA_MAX_SPEC; i++) key.spec[i] = d->spec[i];
    return vka_fnv1a(vka_fnv1a(VKA_FNV1A_BASIS, name, strlen(name)), &key, sizeof key);
}

static int desc_equal(const vka_kernel_desc *a, const vka_kernel_desc *b)
{
    if (strcmp(a->name ? a->name : "", b->name ? b->name : "") != 0 || a->spirv != b->spirv ||
        a->spirv_bytes != b->spirv_bytes || a->num_bindings != b->num_bindings || a->push_bytes != b->push_bytes ||
        a->shared_bytes != b->shared_bytes || a->num_spec != b->num_spec)
        return 0;
    for (uint32_t i = 0; i < a->num_bindings && i < VKA_MAX_BINDINGS; i++)
        if (a->bindings[i] != b->bindings[i]) return 0;
    for (int i = 0; i < 3; i++)
        if (local_size(a, i) != local_size(b, i)) return 0;
    for (uint32_t i = 0; i < a->num_spec && i < VKA_MAX_SPEC; i++)
        if (a->spec[i] != b->spec[i]) return 0;
    return 1;
}

/* The table position holding a kernel equal to `d`, or the empty one where it would go. */
static uint32_t probe(const vka_kernel_cache *c, const vka_kernel_desc *d)
{
    uint32_t mask = c->capacity - 1, i = (uint32_t)desc_hash(d) & mask;
    while (c->table[i] && !desc_equal(&c->table[i]->desc, d)) i = (i + 1) & mask;
    return i;
}

/* Doubles the table (kept at most half full, so that probe always meets an empty position). */
static vka_result grow(vka_context *ctx)
{
    vka_kernel_cache *c = &ctx->kernels, bigger = {NULL, c->capacity ? c->capacity * 2 : INITIAL_CAPACITY, c->count};
    bigger.table = calloc(bigger.capacity, sizeof *bigger.table);
    if (!bigger.table)
        return vka_fail(&ctx->logger, VKA_ERROR_OUT_OF_HOST_MEMORY, "kernel cache: no memory for %u entries",
                        bigger.capacity);
    for (uint32_t i = 0; i < c->capacity; i++)
        if (c->table[i]) bigger.table[probe(&bigger, &c->table[i]->desc)] = c->table[i];
    free(c->table);
    *c = bigger;
    return VKA_SUCCESS;
}

vka_result vka_kernel_get(vka_context *ctx, const vka_kernel_desc *desc, vka_kernel **out)
{
    vka_kernel_cache *c = &ctx->kernels;
    if (2 * (c->count + 1) > c->capacity) {
        vka_result rc = grow(ctx);
        if (rc) return rc;
    }
    uint32_t i = probe(c, desc);
    if (!c->table[i]) {
        vka_result rc = vka_kernel_create(ctx, desc, &c->table[i]);
        if (rc) return rc;
        c->count++;
    }
    *out = c->table[i];
    return VKA_SUCCESS;
}

int vka_kernel_built(const vka_context *ctx, const char *name, int spec_index, uint32_t spec_value)
{
    const vka_kernel_cache *c = &ctx->kernels;
    for (uint32_t i = 0; i < c->capacity; i++) {
        const vka_kernel *k = c->table[i];
        if (!k || !k->desc.name || strcmp(k->desc.name, name) != 0) continue;
        if (spec_index < 0 || ((uint32_t)spec_index < k->desc.num_spec && k->desc.spec[spec_index] == spec_value))
            return 1;
    }
    return 0;
}

void vka_kernel_cache_destroy(vka_context *ctx)
{
    vka_kernel_cache *c = &ctx->kernels;
    for (uint32_t i = 0; i < c->capacity; i++) vka_kernel_destroy(ctx, c->table[i]);
    free(c->table);
    *c = (vka_kernel_cache){0};
}
