// Shared by the norm family (batchnorm, relu, add, pooling).
//
// VT is the unit a kernel loads and stores: a float, or a vec4 of 4 consecutive
// floats of one plane when the host compiled the VEC4 variant (HW % 4 == 0, or
// n % 4 == 0 for the flat ops). UNIT is the number of floats in a VT.
// SPAN (batchnorm, with VEC4 and TEXEL): planes of H*W % 4 != 0 floats still move as vec4
// texels of the flat tensor. A texel may straddle two planes (H*W >= 4: never more), so the
// element-wise passes pick each component's channel coefficients, and the per-channel
// reductions walk vec4 "chunks" covering their plane and mask the floats outside it.
#if defined(SPAN) && !(defined(VEC4) && defined(TEXEL))
#error "SPAN variants are vec4 texel-buffer variants"
#endif
// CT: the type of a per-channel coefficient as a unit sees it (per component under SPAN).
#ifdef SPAN
#define CT vec4
#else
#define CT float
#endif
#ifdef VEC4
#define VT vec4
#define UNIT 4u
float unit_sum(vec4 v) { return (v.x + v.y) + (v.z + v.w); }
float unit_first(vec4 v) { return v.x; }
#else
#define VT float
#define UNIT 1u
float unit_sum(float v) { return v; }
float unit_first(float v) { return v; }
#endif

// Inputs that are read many times per byte written come in two variants: TEXEL
// binds them as uniform texel buffers (RGBA32F for vec4 units, R32F for floats;
// lavapipe gathers those branch-free, about 2x faster than storage loads) and the
// plain one as storage buffers (when a tensor exceeds maxTexelBufferElements).
//   INPUT_VT(binding, name)    a (.., VT) input        LOAD_VT(name, i)
//   INPUT_VEC4(binding, name)  a (.., vec4) input      LOAD_VEC4(name, i)
#ifdef TEXEL
#define INPUT_VT(b, name) layout(binding = b) uniform samplerBuffer name;
#define LOAD_VT(name, i) VT(texelFetch(name, int(i)))
#define INPUT_VEC4(b, name) layout(binding = b) uniform samplerBuffer name;
#define LOAD_VEC4(name, i) texelFetch(name, int(i))
#else
#define INPUT_VT(b, name) layout(std430, binding = b) readonly buffer name##_block { VT name[]; };
#define LOAD_VT(name, i) name[i]
#define INPUT_VEC4(b, name) layout(std430, binding = b) readonly buffer name##_block { vec4 name[]; };
#define LOAD_VEC4(name, i) name[i]
#endif

// g where z > 0, else 0 (ReLU's gradient mask; 0 at z == 0 and for NaN, as the reference).
// A select, not a product, so an infinite or NaN g under a closed mask gives 0.
float relu_mask(float z, float g) { return z > 0.0 ? g : 0.0; }
vec4 relu_mask(vec4 z, vec4 g) { return mix(vec4(0.0), g, greaterThan(z, vec4(0.0))); }

// BatchNorm's affine map, bit-identical in every kernel that computes it: the
// forward writes max(z, 0) with a fused ReLU and the backward recomputes z to
// mask dy, so both must round the same way. `precise` forbids contraction into
// an fma (some drivers would contract in one shader and not in the other).
//   scale = gamma * invstd;  z = (x - mean) * scale + beta
float bn_scale(float gamma, float invstd)
{
    precise float s = gamma * invstd;
    return s;
}
VT bn_affine(VT x, float mean, float scale, float beta)
{
    precise VT z = (x - mean) * scale + beta;
    return z;
}

// Chan et al.'s merge of two (count, mean, M2) summaries, M2 = sum (x - mean)^2.
// Exact when either side is empty.
void chan_merge(inout float na, inout float ma, inout float m2a, float nb, float mb, float m2b)
{
    if (nb > 0.0) {
        float n = na + nb;
        float delta = mb - ma;
        float f = nb / n;
        ma = ma + delta * f;
        m2a = m2a + m2b + delta * delta * na * f;
        na = n;
    }
}

#ifdef SPAN
// Components of the texel whose first float sits at position j of its plane: true for
// those still in that plane (the rest belong to the next plane, the next channel).
bvec4 span_here(uint j, uint plane) { return lessThan(uvec4(j) + uvec4(0u, 1u, 2u, 3u), uvec4(plane)); }
// The channel of the plane after one of channel c: c + 1, or 0 (of the next sample).
uint next_channel(uint c, uint C) { return c + 1u == C ? 0u : c + 1u; }
// Per component: `here` where span_here is true, `next` elsewhere.
vec4 span_pick(float here_v, float next_v, bvec4 here) { return mix(vec4(next_v), vec4(here_v), here); }
// bn_affine with per-component coefficients: the same rounding, component by component.
vec4 bn_affine(vec4 x, vec4 mean, vec4 scale, vec4 beta)
{
    precise vec4 z = (x - mean) * scale + beta;
    return z;
}

// The reductions' chunks: chunk k of the plane starting at float `base` is the texel
// (base >> 2) + k; its component i is float 4k + i - (base & 3) of the plane, inside the plane
// when that is in [0, plane). The last chunk of the last plane may lie past the tensor's end:
// its index is clamped to the last texel and every component of it is masked out.
uint span_chunk(uint base, uint k, uint texels) { return min((base >> 2) + k, texels - 1u); }
bvec4 span_inside(uint base, uint k, uint plane)
{
    return lessThan(uvec4(4u * k - (base & 3u)) + uvec4(0u, 1u, 2u, 3u), uvec4(plane));
}
#endif
