#version 450
#extension GL_GOOGLE_include_directive : require
#include "corrupt_common.glsl"
// glass_blur, as CIFAR-10-C, in three passes over the scratch buffer G (N, C, H, W) uints:
// mode 0: G = floor(gaussian(x, sigma fp[0]) + 1e-3) (the original's np.uint8 truncation; the
//         1e-3 keeps flat regions from dropping a level through round-off), one per pixel;
// mode 1: local shuffle, one invocation per image, sequential like the original: ip[2]
//         iterations of, for rows h = H - d .. d + 1 and columns w = W - d .. d + 1 (both
//         descending, d = ip[1]), swapping pixel (h, w) with (h + dy, w + dx), dx, dy uniform
//         in [-d, d - 1] (numpy's randint(-d, d) excludes d);
// mode 2: out = gaussian(G, sigma), rounded (per output word).
// Gaussians: skimage's (radius ip[0] = int(4 sigma + 1/2), edges 'nearest').
#define CUSTOM_MAIN
#include "corrupt_bytes.glsl"

layout(std430, binding = 2) buffer Scratch { uint g[]; };

#define MAX_GAUSS_RADIUS 16

float blur(uint b, uint ch, int y, int x, bool from_scratch)
{
    int r = p.ip[0];
    float k = -0.5 / (p.fp[0] * p.fp[0]);
    float wt[MAX_GAUSS_RADIUS + 1];
    float norm = 0.0;
    for (int i = 0; i <= r; i++) {
        wt[i] = exp(k * float(i * i));
        norm += i == 0 ? wt[i] : 2.0 * wt[i];
    }
    uint base = (b * p.c + ch) * p.h * p.w;
    float acc = 0.0;
    for (int dy = -r; dy <= r; dy++) {
        uint row = base + uint(clamp_edge(y + dy, int(p.h))) * p.w;
        float s = 0.0;
        for (int dx = -r; dx <= r; dx++) {
            uint i = row + uint(clamp_edge(x + dx, int(p.w)));
            s += wt[abs(dx)] * float(from_scratch ? g[i] : pix_at(i));
        }
        acc += wt[abs(dy)] * s;
    }
    return acc / (norm * norm);
}

float corrupt_value(uint b, uint ch, int y, int x) { return blur(b, ch, y, x, true); }

void main()
{
    if (p.mode == 2u) {
        bytes_main();
        return;
    }
    uint e = flat_invocation_index();
    if (p.mode == 0u) {
        if (e >= p.n * p.c * p.h * p.w) return;
        uint x = e % p.w, y = (e / p.w) % p.h, t = e / (p.w * p.h);
        g[e] = uint(floor(blur(t / p.c, t % p.c, int(y), int(x), false) + 1e-3));
        return;
    }
    if (e >= p.n) return;
    int d = p.ip[1], H = int(p.h), W = int(p.w);
    uint key = rng_key(S_GLASS, p.first_image + e);
    uint plane = p.h * p.w, base = e * p.c * plane;
    for (int it = 0; it < p.ip[2]; it++)
        for (int h = H - d; h > d; h--)
            for (int w = W - d; w > d; w--) {
                uint bits = rng_bits(key, uint((it * H + h) * W + w));
                int dx = int((bits & 0xffffu) % uint(2 * d)) - d, dy = int((bits >> 16) % uint(2 * d)) - d;
                uint i0 = base + uint(h * W + w), i1 = base + uint((h + dy) * W + (w + dx));
                for (uint ch = 0u; ch < p.c; ch++) {
                    uint a = g[i0 + ch * plane];
                    g[i0 + ch * plane] = g[i1 + ch * plane];
                    g[i1 + ch * plane] = a;
                }
            }
}
