#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// uint8 batch -> random crop (zero padding) + horizontal flip + normalization, as floats.
// out[b, c, y, x] = (pixel(b, c, y + dy_b, xs + dx_b) / 255 - mean[c]) / std[c],
// xs = flip_b ? W-1-x : x; pixels outside the image are 0 (padding before normalization,
// like torchvision's RandomCrop(padding)). One invocation per output element.
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n, c, h, w;              // batch (N, C, H, W)
    vec4 mean;                    // per channel, [0, 1] scale
    vec4 inv_std;
} p;

layout(std430, binding = 0) readonly buffer Pixels { uint pix[]; };    // (N, C, H, W) bytes, 4 per word
layout(std430, binding = 1) readonly buffer Params { int prm[]; };     // (N, 3): dx, dy, flip
layout(std430, binding = 2) writeonly buffer Out { float o[]; };       // (N, C, H, W)

void main()
{
    uint i = flat_invocation_index();
    uint total = p.n * p.c * p.h * p.w;
    if (i >= total) return;
    uint x = i % p.w, t = i / p.w;
    uint y = t % p.h; t /= p.h;
    uint ch = t % p.c, b = t / p.c;
    int dx = prm[3 * b], dy = prm[3 * b + 1], flip = prm[3 * b + 2];
    int xs = (flip != 0 ? int(p.w) - 1 - int(x) : int(x)) + dx;
    int ys = int(y) + dy;
    float v = 0.0;
    if (xs >= 0 && xs < int(p.w) && ys >= 0 && ys < int(p.h)) {
        uint idx = ((b * p.c + ch) * p.h + uint(ys)) * p.w + uint(xs);
        v = float((pix[idx >> 2] >> ((idx & 3u) * 8u)) & 0xffu);
    }
    o[i] = (v * (1.0 / 255.0) - p.mean[ch]) * p.inv_std[ch];
}
