#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Second pass of the weight and bias gradients: out (rows, cols) = sum over the slices, in
// slice order, of the partials part[j*slice_stride + r*ld + col0 + c]. Fixed order, no
// atomics: the same bits every run. dw: rows K, cols C*R*S, col0 0; db: rows K, cols 1,
// col0 C*R*S (the ones column); ld = C*R*S + 1. With TEXEL the partials come through an
// R32F texel buffer (lavapipe gathers those; storage-buffer loads are a loop over the lanes).
// With VEC4, dw and db at once: each invocation sums 4 consecutive floats of a slice's
// K x ld block as one RGBA32F texel (a quarter of the fetches and loop trips, the same
// additions in the same order per float), then stores each to dw or, the ones column, db.
layout(local_size_x_id = 0) in;
#ifdef VEC4
layout(push_constant) uniform Push {
    uint total4;        // K * ld / 4 texels per slice
    uint ld, crs;       // ld = crs + 1
    uint slices, slice_stride4, has_db;
} p;
layout(binding = 0) uniform samplerBuffer Part;
layout(std430, binding = 1) writeonly buffer Dw { float dw[]; };
layout(std430, binding = 2) writeonly buffer Db { float db[]; };  // aliases dw when has_db = 0

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.total4) return;
    vec4 sum = vec4(0.0);
    for (uint j = 0; j < p.slices; j++) sum += texelFetch(Part, int(j * p.slice_stride4 + id));
    uint f = id * 4, row = f / p.ld, col = f - row * p.ld;
    [[unroll]] for (uint c = 0; c < 4; c++) {
        if (col < p.crs) dw[row * p.crs + col] = sum[c];
        else if (p.has_db != 0) db[row] = sum[c];
        if (++col == p.ld) col = 0, row++;
    }
}
#else
layout(push_constant) uniform Push {
    uint rows, cols, ld, col0, slices, slice_stride;
} p;
#ifdef TEXEL
layout(binding = 0) uniform samplerBuffer Part;
#define PART(i) texelFetch(Part, int(i)).x
#else
layout(std430, binding = 0) readonly buffer Part { float part[]; };
#define PART(i) part[i]
#endif
layout(std430, binding = 1) writeonly buffer Out { float o[]; };

void main()
{
    uint id = flat_invocation_index();
    if (id >= p.rows * p.cols) return;
    uint r = id / p.cols, src = r * p.ld + p.col0 + (id - r * p.cols);
    float sum = 0.0;
    for (uint j = 0; j < p.slices; j++) sum += PART(j * p.slice_stride + src);
    o[id] = sum;
}
#endif
