#version 450
#extension GL_GOOGLE_include_directive : require
#include "corrupt_common.glsl"
// jpeg_compression: baseline JPEG's lossy steps on each 8x8 block, in integers (bit-exact on
// every device): level shift, 2D DCT (orthonormal, fixed point 2^13, as libjpeg's
// islow in spirit), quantization by the standard (Annex K) tables scaled by quality ip[0]
// as libjpeg does, dequantization, inverse DCT, rounding and clamping. C = 1: luma only;
// C = 3: libjpeg's fixed-point RGB <-> YCbCr and the chroma table, WITHOUT chroma
// subsampling (4:4:4). Edge blocks replicate the last row and column. One invocation per
// (image, block); the output must be zeroed first (bytes are OR-ed into their words).
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Pixels { uint pix[]; };
layout(std430, binding = 1) buffer Out { uint o[]; };

// round(2^13 * a(u) cos((2x + 1) u pi / 16)), a(0) = sqrt(1/8), a(u > 0) = 1/2; row u.
const int DCT[64] = int[64](
    2896, 2896, 2896, 2896, 2896, 2896, 2896, 2896,
    4017, 3406, 2276, 799, -799, -2276, -3406, -4017,
    3784, 1567, -1567, -3784, -3784, -1567, 1567, 3784,
    3406, -799, -4017, -2276, 2276, 4017, 799, -3406,
    2896, -2896, -2896, 2896, 2896, -2896, -2896, 2896,
    2276, -4017, 799, 3406, -3406, -799, 4017, -2276,
    1567, -3784, 3784, -1567, -1567, 3784, -3784, 1567,
    799, -2276, 3406, -4017, 4017, -3406, 2276, -799);
// ITU T.81 Annex K.1, natural order (row = vertical frequency).
const int Q_LUMA[64] = int[64](
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99);
const int Q_CHROMA[64] = int[64](
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99);

uint pix_at(uint i) { return (pix[i >> 2] >> ((i & 3u) * 8u)) & 0xffu; }

// In place: samples 0..255 -> the decoded samples 0..255.
void code_block(inout int s[64], bool chroma)
{
    int q = p.ip[0];
    int scale = q < 50 ? 5000 / q : 200 - 2 * q;
    int t[64];
    // |values| stay below 2^31 at every step (bounds in docs/corruptions.md).
    for (int y = 0; y < 8; y++)          // rows: t[y][u] = sum_x (s - 128) DCT[u][x], units 2^4
        for (int u = 0; u < 8; u++) {
            int acc = 0;
            for (int x = 0; x < 8; x++) acc += (s[y * 8 + x] - 128) * DCT[u * 8 + x];
            t[y * 8 + u] = (acc + 256) >> 9;
        }
    for (int v = 0; v < 8; v++)          // columns (units 2^17), quantize, dequantize
        for (int u = 0; u < 8; u++) {
            int acc = 0;
            for (int y = 0; y < 8; y++) acc += DCT[v * 8 + y] * t[y * 8 + u];
            int qk = clamp(((chroma ? Q_CHROMA[v * 8 + u] : Q_LUMA[v * 8 + u]) * scale + 50) / 100, 1, 255);
            int d = qk << 17;
            int level = acc < 0 ? -((-acc + (d >> 1)) / d) : (acc + (d >> 1)) / d;
            s[v * 8 + u] = level * qk;
        }
    for (int v = 0; v < 8; v++)          // inverse rows: t[v][x] = sum_u G[v][u] DCT[u][x], units 2^2
        for (int x = 0; x < 8; x++) {
            int acc = 0;
            for (int u = 0; u < 8; u++) acc += s[v * 8 + u] * DCT[u * 8 + x];
            t[v * 8 + x] = (acc + 1024) >> 11;
        }
    for (int y = 0; y < 8; y++)          // inverse columns (units 2^15)
        for (int x = 0; x < 8; x++) {
            int acc = 0;
            for (int v = 0; v < 8; v++) acc += DCT[v * 8 + y] * t[v * 8 + x];
            s[y * 8 + x] = clamp(((acc + 16384) >> 15) + 128, 0, 255);
        }
}

void main()
{
    uint e = flat_invocation_index();
    uint nbx = (p.w + 7u) / 8u, nby = (p.h + 7u) / 8u;
    if (e >= p.n * nby * nbx) return;
    uint bx = e % nbx, by = (e / nbx) % nby, b = e / (nbx * nby);
    uint plane = p.h * p.w;
    int c0[64], c1[64], c2[64];
    for (int k = 0; k < 64; k++) {
        uint y = min(by * 8u + uint(k / 8), p.h - 1u), x = min(bx * 8u + uint(k % 8), p.w - 1u);
        uint i = b * p.c * plane + y * p.w + x;
        int r = int(pix_at(i));
        if (p.c == 3u) {
            int g = int(pix_at(i + plane)), bl = int(pix_at(i + 2u * plane));
            c0[k] = (19595 * r + 38470 * g + 7471 * bl + 32768) >> 16;
            c1[k] = (-11059 * r - 21709 * g + 32768 * bl + (128 << 16) + 32767) >> 16;
            c2[k] = (32768 * r - 27439 * g - 5329 * bl + (128 << 16) + 32767) >> 16;
        } else {
            c0[k] = r;
        }
    }
    code_block(c0, false);
    if (p.c == 3u) {
        code_block(c1, true);
        code_block(c2, true);
    }
    for (int k = 0; k < 64; k++) {
        uint y = by * 8u + uint(k / 8), x = bx * 8u + uint(k % 8);
        if (y >= p.h || x >= p.w) continue;
        uint i = b * p.c * plane + y * p.w + x;
        if (p.c == 3u) {
            int yy = c0[k], cb = c1[k] - 128, cr = c2[k] - 128;
            int rgb[3] = int[3](yy + ((91881 * cr + 32768) >> 16),
                                yy + ((-22554 * cb - 46802 * cr + 32768) >> 16),
                                yy + ((116130 * cb + 32768) >> 16));
            for (uint ch = 0u; ch < 3u; ch++) {
                uint j = i + ch * plane;
                atomicOr(o[j >> 2], uint(clamp(rgb[ch], 0, 255)) << ((j & 3u) * 8u));
            }
        } else {
            atomicOr(o[i >> 2], uint(c0[k]) << ((i & 3u) * 8u));
        }
    }
}
