// Shared by the norm family (batchnorm, relu, add, pooling).
//
// VT is the unit a kernel loads and stores: a float, or a vec4 of 4 consecutive
// floats of one plane when the host compiled the VEC4 variant (HW % 4 == 0, or
// n % 4 == 0 for the flat ops). UNIT is the number of floats in a VT.
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
