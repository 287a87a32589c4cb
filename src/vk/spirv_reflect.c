/* Just enough SPIR-V reflection to check a kernel's C description against the
 * module: the push-constant block's size and the kind of each binding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vk_internal.h"

enum {
    OP_DECORATE = 71, OP_MEMBER_DECORATE = 72, OP_TYPE_INT = 21, OP_TYPE_FLOAT = 22,
    OP_TYPE_VECTOR = 23, OP_TYPE_MATRIX = 24, OP_TYPE_IMAGE = 25, OP_TYPE_SAMPLED_IMAGE = 27,
    OP_TYPE_ARRAY = 28, OP_TYPE_STRUCT = 30, OP_TYPE_POINTER = 32, OP_CONSTANT = 43,
    OP_VARIABLE = 59, OP_EXECUTION_MODE_ID = 331, OP_DECORATE_BUILTIN_WG = 0,
    DEC_ARRAY_STRIDE = 6, DEC_MATRIX_STRIDE = 7, DEC_BUILTIN = 11, DEC_SPEC_ID = 1,
    DEC_BINDING = 33, DEC_SET = 34, DEC_OFFSET = 35,
    SC_UNIFORM_CONSTANT = 0, SC_UNIFORM = 2, SC_PUSH_CONSTANT = 9, SC_STORAGE_BUFFER = 12,
    DIM_BUFFER = 5, BUILTIN_WORKGROUP_SIZE = 25,
};

typedef struct id_info {
    uint16_t op;
    uint32_t a, b, c;            /* operands, meaning by op */
    uint32_t binding, set, array_stride;
    int has_binding, builtin_wg, spec_id;
    uint32_t member_count, member_first; /* struct members in the side table */
} id_info;

static uint32_t type_size(const id_info *ids, uint32_t bound, const uint32_t *members,
                          const uint32_t *offsets, uint32_t t, int depth);

static uint32_t struct_size(const id_info *ids, uint32_t bound, const uint32_t *members,
                            const uint32_t *offsets, uint32_t t, int depth)
{
    uint32_t size = 0;
    for (uint32_t m = 0; m < ids[t].member_count; m++) {
        uint32_t idx = ids[t].member_first + m;
        uint32_t end = offsets[idx] + type_size(ids, bound, members, offsets, members[idx], depth + 1);
        if (end > size) size = end;
    }
    return size;
}

static uint32_t type_size(const id_info *ids, uint32_t bound, const uint32_t *members,
                          const uint32_t *offsets, uint32_t t, int depth)
{
    if (t >= bound || depth > 16) return 0;
    const id_info *i = &ids[t];
    switch (i->op) {
    case OP_TYPE_INT:
    case OP_TYPE_FLOAT: return i->a / 8;
    case OP_TYPE_VECTOR: return i->b * type_size(ids, bound, members, offsets, i->a, depth + 1);
    case OP_TYPE_ARRAY: {
        uint32_t len = i->b < bound && ids[i->b].op == OP_CONSTANT ? ids[i->b].b : 0;
        uint32_t stride = i->array_stride ? i->array_stride : type_size(ids, bound, members, offsets, i->a, depth + 1);
        return len * stride;
    }
    case OP_TYPE_STRUCT: return struct_size(ids, bound, members, offsets, t, depth);
    default: return 0;
    }
}

vka_result vka_spirv_reflect(const uint32_t *code, size_t bytes, vka_spirv_interface *out,
                             char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    size_t n = bytes / 4;
    if (bytes % 4 || n < 5 || code[0] != 0x07230203) {
        snprintf(why, why_size, "not a SPIR-V module (bad magic or size)");
        return VKA_ERROR_SHADER_MISMATCH;
    }
    uint32_t bound = code[3];
    id_info *ids = calloc(bound, sizeof *ids);
    /* Struct members: type and offset, filled in two passes over the module. */
    uint32_t member_total = 0;
    for (size_t p = 5; p < n;) {
        uint32_t wc = code[p] >> 16, op = code[p] & 0xffff;
        if (wc == 0 || p + wc > n) break;
        if (op == OP_TYPE_STRUCT) member_total += wc - 2;
        p += wc;
    }
    uint32_t *members = calloc(member_total + 1, sizeof *members);
    uint32_t *offsets = calloc(member_total + 1, sizeof *offsets);
    if (!ids || !members || !offsets) {
        free(ids), free(members), free(offsets);
        snprintf(why, why_size, "out of host memory");
        return VKA_ERROR_OUT_OF_HOST_MEMORY;
    }
    uint32_t member_used = 0;
    for (size_t p = 5; p < n;) {
        uint32_t wc = code[p] >> 16, op = code[p] & 0xffff;
        if (wc == 0 || p + wc > n) break;
        const uint32_t *w = code + p;
        uint32_t r = wc > 1 ? w[1] : 0;
        switch (op) {
        case OP_TYPE_INT: case OP_TYPE_FLOAT:
            if (r < bound) ids[r] = (id_info){.op = op, .a = w[2]};
            break;
        case OP_TYPE_VECTOR: case OP_TYPE_ARRAY: case OP_TYPE_SAMPLED_IMAGE:
            if (r < bound) { ids[r].op = op; ids[r].a = w[2]; ids[r].b = wc > 3 ? w[3] : 0; }
            break;
        case OP_TYPE_IMAGE:
            if (r < bound) { ids[r].op = op; ids[r].a = w[3]; /* Dim */ ids[r].b = w[7]; /* Sampled */ }
            break;
        case OP_TYPE_STRUCT:
            if (r < bound) {
                ids[r].op = op;
                ids[r].member_first = member_used;
                ids[r].member_count = wc - 2;
                for (uint32_t m = 0; m < wc - 2; m++) members[member_used++] = w[2 + m];
            }
            break;
        case OP_TYPE_POINTER:
            if (r < bound) { ids[r].op = op; ids[r].a = w[2]; ids[r].b = w[3]; }
            break;
        case OP_CONSTANT:
            if (wc > 3 && w[2] < bound) { uint32_t id = w[2]; if (id < bound) { ids[id].op = op; ids[id].b = w[3]; } }
            break;
        case OP_VARIABLE:
            if (w[2] < bound) { ids[w[2]].op = op; ids[w[2]].a = w[1]; ids[w[2]].c = w[3]; }
            break;
        }
        p += wc;
    }
    /* Decorations may precede their targets' definitions: apply them after. */
    for (size_t p = 5; p < n;) {
        uint32_t wc = code[p] >> 16, op = code[p] & 0xffff;
        if (wc == 0 || p + wc > n) break;
        const uint32_t *w = code + p;
        if (op == OP_DECORATE && wc >= 3 && w[1] < bound) {
            id_info *t = &ids[w[1]];
            if (w[2] == DEC_BINDING && wc > 3) { t->binding = w[3]; t->has_binding = 1; }
            if (w[2] == DEC_SET && wc > 3) t->set = w[3];
            if (w[2] == DEC_ARRAY_STRIDE && wc > 3) t->array_stride = w[3];
            if (w[2] == DEC_BUILTIN && wc > 3 && w[3] == BUILTIN_WORKGROUP_SIZE) t->builtin_wg = 1;
            if (w[2] == DEC_SPEC_ID && wc > 3 && w[3] < 3) out->local_size_ids[w[3]] = 1;
        } else if (op == OP_MEMBER_DECORATE && wc >= 5 && w[1] < bound && w[3] == DEC_OFFSET) {
            id_info *t = &ids[w[1]];
            if (w[2] < t->member_count) offsets[t->member_first + w[2]] = w[4];
        }
        p += wc;
    }
    vka_result rc = VKA_SUCCESS;
    for (uint32_t v = 0; v < bound && !rc; v++) {
        if (ids[v].op != OP_VARIABLE) continue;
        uint32_t ptr = ids[v].a, sc = ids[v].c;
        uint32_t pointee = ptr < bound ? ids[ptr].b : 0; /* OpTypePointer: storage class, type */
        if (sc == SC_PUSH_CONSTANT) {
            out->push_bytes = type_size(ids, bound, members, offsets, pointee, 0);
            continue;
        }
        if (!ids[v].has_binding) continue;
        if (ids[v].set != 0 || ids[v].binding >= VKA_MAX_BINDINGS) {
            snprintf(why, why_size, "binding (set %u, binding %u) is outside set 0, bindings 0..%d",
                     ids[v].set, ids[v].binding, VKA_MAX_BINDINGS - 1);
            rc = VKA_ERROR_SHADER_MISMATCH;
            break;
        }
        uint32_t b = ids[v].binding;
        vka_binding_kind kind;
        if (sc == SC_STORAGE_BUFFER || sc == SC_UNIFORM) {
            kind = VKA_BIND_STORAGE;
        } else if (sc == SC_UNIFORM_CONSTANT && pointee < bound && ids[pointee].op == OP_TYPE_SAMPLED_IMAGE &&
                   ids[pointee].a < bound && ids[ids[pointee].a].a == DIM_BUFFER) {
            kind = VKA_BIND_TEXEL_R32F;
        } else {
            snprintf(why, why_size, "binding %u is neither a storage buffer nor a uniform texel buffer", b);
            rc = VKA_ERROR_SHADER_MISMATCH;
            break;
        }
        out->bindings[b] = kind;
        out->binding_present[b] = 1;
        if (b + 1 > out->num_bindings) out->num_bindings = b + 1;
    }
    free(ids);
    free(members);
    free(offsets);
    return rc;
}
