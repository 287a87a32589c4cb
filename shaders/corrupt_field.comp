#version 450
#extension GL_GOOGLE_include_directive : require
#include "corrupt_common.glsl"
// Random fields in the scratch buffer (floats), one invocation per element:
// mode 0, elastic rows:   T (N, 2, H, W) = rows of uniform(-1, 1) noise (component 0: dx,
//                         1: dy) blurred by a Gaussian (sigma fp[0], radius ip[0] =
//                         int(3 sigma + 1/2), edges 'reflect' as skimage's gaussian);
// mode 1, elastic cols:   D (N, 2, H, W) at word ip[1] = fp[1] (alpha) * columns of T
//                         blurred the same way;
// mode 2, snow layer:     L (N, H, W) = clip(Z, 0, 1) where Z >= fp[2], else 0; Z is the
//                         clipped zoom (factor ip[0] / 100, bilinear) of normal(fp[0], fp[1])
//                         noise on the pixel grid.
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) buffer Scratch { float f[]; };

float gauss_weight(int i) { return exp(-0.5 * float(i * i) / (p.fp[0] * p.fp[0])); }

float snow_grid(uint key, int y, int x) { return p.fp[0] + p.fp[1] * normal01(key, uint(y) * p.w + uint(x)); }

void main()
{
    uint e = flat_invocation_index();
    int W = int(p.w), H = int(p.h);
    uint plane = p.h * p.w;
    if (p.mode == 2u) {
        if (e >= p.n * plane) return;
        int x = int(e % p.w), y = int((e / p.w) % p.h);
        uint b = e / plane;
        uint key = rng_key(S_SNOW, p.first_image + b);
        float sy = zoom_source(y, H, p.ip[0]), sx = zoom_source(x, W, p.ip[0]);
        int y0 = int(floor(sy)), x0 = int(floor(sx));
        float fy = sy - float(y0), fx = sx - float(x0);
        int y1 = min(y0 + 1, H - 1), x1 = min(x0 + 1, W - 1);
        float z = (snow_grid(key, y0, x0) * (1.0 - fx) + snow_grid(key, y0, x1) * fx) * (1.0 - fy) +
                  (snow_grid(key, y1, x0) * (1.0 - fx) + snow_grid(key, y1, x1) * fx) * fy;
        f[e] = z < p.fp[2] ? 0.0 : min(z, 1.0);
        return;
    }
    if (e >= p.n * 2u * plane) return;
    int x = int(e % p.w), y = int((e / p.w) % p.h);
    uint bc = e / plane;   // b * 2 + component
    int r = p.ip[0];
    float acc = 0.0, norm = 0.0;
    if (p.mode == 0u) {
        uint key = rng_key(S_ELASTIC_X + bc % 2u, p.first_image + bc / 2u);
        for (int j = -r; j <= r; j++) {
            float wt = gauss_weight(j);
            acc += wt * (u01(rng_bits(key, uint(y * W + reflect_half(x + j, W)))) * 2.0 - 1.0);
            norm += wt;
        }
        f[e] = acc / norm;
    } else {
        for (int i = -r; i <= r; i++) {
            float wt = gauss_weight(i);
            acc += wt * f[bc * plane + uint(reflect_half(y + i, H) * W + x)];
            norm += wt;
        }
        f[uint(p.ip[1]) + e] = p.fp[1] * (acc / norm);
    }
}
