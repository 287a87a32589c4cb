#version 450
#extension GL_GOOGLE_include_directive : require
#include "corrupt_common.glsl"
// Blurs, per output pixel, in pixel units (exact integers in, weights normalized):
// gaussian_blur (skimage: radius int(4 sigma + 1/2), edges 'nearest'), defocus_blur (an
// aliased disk smoothed by a 3x3 Gaussian, as CIFAR-10-C's disk(); edges reflect-101 as
// cv2.filter2D), motion_blur (ImageMagick's one-sided Gaussian streak of 2 ceil(radius)+1
// taps at a random angle in [-45, 45) degrees; edges clamped), zoom_blur (mean of the image
// and its clipped zooms 1 + k/100, bilinear) and pixelate (PIL-style BOX down, BOX up,
// integer means rounded after each pass). Parameters: see vka_corrupt in src/data/corrupt.c.
#include "corrupt_bytes.glsl"

#define MAX_GAUSS_RADIUS 16

float gaussian_blur(uint b, uint ch, int y, int x)
{
    int r = p.ip[0];
    float k = -0.5 / (p.fp[0] * p.fp[0]);
    float g[MAX_GAUSS_RADIUS + 1];
    float norm = 0.0;
    for (int i = 0; i <= r; i++) {
        g[i] = exp(k * float(i * i));
        norm += i == 0 ? g[i] : 2.0 * g[i];
    }
    float acc = 0.0;
    for (int dy = -r; dy <= r; dy++) {
        int yy = clamp_edge(y + dy, int(p.h));
        float row = 0.0;
        for (int dx = -r; dx <= r; dx++) row += g[abs(dx)] * px(b, ch, yy, clamp_edge(x + dx, int(p.w)));
        acc += g[abs(dy)] * row;
    }
    return acc / (norm * norm);
}

float defocus_blur(uint b, uint ch, int y, int x)
{
    int big = p.ip[0];
    float r2 = p.fp[0], inv_area = p.fp[1];
    float g[3] = float[3](p.fp[3], p.fp[2], p.fp[3]);
    float acc = 0.0;
    for (int dy = -big; dy <= big; dy++)
        for (int dx = -big; dx <= big; dx++) {
            float kw = 0.0;   // (disk * 3x3 Gaussian)(dy, dx)
            for (int i = -1; i <= 1; i++)
                for (int j = -1; j <= 1; j++) {
                    int qy = dy - i, qx = dx - j;
                    if (float(qy * qy + qx * qx) <= r2) kw += g[i + 1] * g[j + 1];
                }
            if (kw != 0.0)
                acc += kw * px(b, ch, reflect101(y + dy, int(p.h)), reflect101(x + dx, int(p.w)));
        }
    return acc * inv_area;
}

float motion_blur(uint b, uint ch, int y, int x)
{
    float a = (u01(rng_bits(rng_key(S_ANGLE, p.first_image + b), 0u)) - 0.5) * 1.5707963267948966;
    float ca = cos_poly(a), sa = sin_poly(a);
    float k = -0.5 / (p.fp[0] * p.fp[0]);
    float acc = 0.0, norm = 0.0;
    for (int i = 0; i < p.ip[0]; i++) {
        float wt = exp(k * float(i * i));
        int ox = int(ceil(float(i) * ca - 0.5)), oy = int(ceil(float(i) * sa - 0.5));
        acc += wt * px(b, ch, clamp_edge(y + oy, int(p.h)), clamp_edge(x + ox, int(p.w)));
        norm += wt;
    }
    return acc / norm;
}

float bilinear(uint b, uint ch, float sy, float sx)
{
    int y0 = int(floor(sy)), x0 = int(floor(sx));
    float fy = sy - float(y0), fx = sx - float(x0);
    int y1 = min(y0 + 1, int(p.h) - 1), x1 = min(x0 + 1, int(p.w) - 1);
    return (px(b, ch, y0, x0) * (1.0 - fx) + px(b, ch, y0, x1) * fx) * (1.0 - fy) +
           (px(b, ch, y1, x0) * (1.0 - fx) + px(b, ch, y1, x1) * fx) * fy;
}

float zoom_blur(uint b, uint ch, int y, int x)
{
    float acc = px(b, ch, y, x);
    for (int k = 0; k < p.ip[0]; k++)
        acc += bilinear(b, ch, zoom_source(y, int(p.h), 100 + k), zoom_source(x, int(p.w), 100 + k));
    return acc / float(p.ip[0] + 1);
}

// Input pixels j of the box of small pixel s (PIL BOX, `big` -> `small`): those with
// s * big < (j + 1/2) * small <= (s + 1) * big, in integers.
bool in_box(int j, int s, int big, int small)
{
    int t = (2 * j + 1) * small;
    return t > 2 * s * big && t <= 2 * (s + 1) * big;
}

float pixelate(uint b, uint ch, int y, int x)
{
    int W = int(p.w), H = int(p.h), ow = p.ip[0], oh = p.ip[1];
    int xs = ((2 * x + 1) * ow) / (2 * W), ys = ((2 * y + 1) * oh) / (2 * H);   // BOX up: nearest
    int x_lo = max(xs * W / ow - 1, 0), x_hi = min((xs + 1) * W / ow + 1, W - 1);
    int y_lo = max(ys * H / oh - 1, 0), y_hi = min((ys + 1) * H / oh + 1, H - 1);
    uint total = 0u, rows = 0u;
    for (int i = y_lo; i <= y_hi; i++) {
        if (!in_box(i, ys, H, oh)) continue;
        uint s = 0u, cnt = 0u;
        for (int j = x_lo; j <= x_hi; j++)
            if (in_box(j, xs, W, ow)) {
                s += pix_at(((b * p.c + ch) * p.h + uint(i)) * p.w + uint(j));
                cnt++;
            }
        total += (2u * s + cnt) / (2u * cnt);   // horizontal pass, rounded to a byte
        rows++;
    }
    return float((2u * total + rows) / (2u * rows));
}

float corrupt_value(uint b, uint ch, int y, int x)
{
    switch (p.type) {
    case T_GAUSSIAN_BLUR: return gaussian_blur(b, ch, y, x);
    case T_DEFOCUS_BLUR: return defocus_blur(b, ch, y, x);
    case T_MOTION_BLUR: return motion_blur(b, ch, y, x);
    case T_ZOOM_BLUR: return zoom_blur(b, ch, y, x);
    case T_PIXELATE: return pixelate(b, ch, y, x);
    }
    return px(b, ch, y, x);
}
