// Shared by the corruption kernels (src/data/corrupt.c, docs/corruptions.md): the push
// block, the counter-based random numbers, portable sin/cos, border rules and pixel I/O.
// tests/ref/ref_corrupt.c mirrors every function here in C (double precision).
#include "common.glsl"

// Corruption types: keep equal to enum vka_corruption in src/data/corrupt.h.
#define T_GAUSSIAN_NOISE 0
#define T_SHOT_NOISE 1
#define T_IMPULSE_NOISE 2
#define T_DEFOCUS_BLUR 3
#define T_GLASS_BLUR 4
#define T_MOTION_BLUR 5
#define T_ZOOM_BLUR 6
#define T_SNOW 7
#define T_FOG 8
#define T_BRIGHTNESS 9
#define T_CONTRAST 10
#define T_ELASTIC 11
#define T_PIXELATE 12
#define T_JPEG 13
#define T_SPECKLE_NOISE 14
#define T_GAUSSIAN_BLUR 15
#define T_SATURATE 16

// Random streams (one per use, so no two uses share numbers).
#define S_NOISE 1u          // per-pixel noise (gaussian/shot/impulse/speckle)
#define S_ANGLE 2u          // motion-blur / snow angle, one per image
#define S_SNOW 3u           // snow layer
#define S_FOG 4u            // fog lattices
#define S_GLASS 5u          // glass-blur swaps
#define S_AFFINE 6u         // elastic: the random affine, one set per image
#define S_ELASTIC_X 7u      // elastic: displacement noise, x (S_ELASTIC_X + 1: y)

// Mirror: struct corrupt_push in src/data/corrupt.c (128 bytes).
layout(push_constant) uniform Push {
    uint n, c, h, w;        // batch (N, C, H, W)
    uint type, seed, first_image, mode;   // mode: the pass of multi-pass corruptions
    int ip[8];              // integer parameters (per type: see corrupt.c)
    float fp[16];           // float parameters
} p;

// ---- counter-based randomness: PCG hash (Jarzynski & Olano 2020) -------------------
uint pcg(uint v)
{
    uint s = v * 747796405u + 2891336453u;
    uint w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}
// Key of (seed, stream, image); image is the dataset index (first_image + b).
uint rng_key(uint stream, uint image) { return pcg(pcg(pcg(p.seed) ^ stream) ^ image); }
uint rng_bits(uint key, uint idx) { return pcg(key ^ idx); }
float u01(uint bits) { return float(bits >> 8) * (1.0 / 16777216.0); }              // [0, 1)
float u01_open(uint bits) { return float((bits >> 8) + 1u) * (1.0 / 16777216.0); }  // (0, 1]

// sin and cos on [-pi/2, pi/2] by Taylor polynomials (error < 1e-9 before fp32
// rounding): the built-ins may be as coarse as 2^-11 absolute on some devices.
float sin_poly(float x)
{
    float x2 = x * x;
    return x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362880.0 +
           x2 * (-1.0 / 39916800.0 + x2 * (1.0 / 6227020800.0 + x2 * (-1.0 / 1307674368000.0))))))));
}
float cos_poly(float x)
{
    float x2 = x * x;
    return 1.0 + x2 * (-0.5 + x2 * (1.0 / 24.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40320.0 +
           x2 * (-1.0 / 3628800.0 + x2 * (1.0 / 479001600.0 + x2 * (-1.0 / 87178291200.0)))))));
}
// cos(2 pi t) for t in [0, 1): the quadrant comes exactly from t.
float cos_2pi(float t)
{
    float t4 = t * 4.0;
    float q = floor(t4);
    float a = (t4 - q) * 1.5707963267948966;
    if (q < 0.5) return cos_poly(a);
    if (q < 1.5) return -sin_poly(a);
    if (q < 2.5) return -cos_poly(a);
    return sin_poly(a);
}
// Standard normal by Box-Muller from draws 2 idx and 2 idx + 1 of `key`.
float normal01(uint key, uint idx)
{
    float u1 = u01_open(rng_bits(key, 2u * idx)), u2 = u01(rng_bits(key, 2u * idx + 1u));
    return sqrt(-2.0 * log(u1)) * cos_2pi(u2);
}

// ---- borders --------------------------------------------------------------------
int clamp_edge(int i, int n) { return clamp(i, 0, n - 1); }
// i modulo period in [0, period) for any sign of i. GLSL's % is undefined for negative
// operands (glslang emits OpSMod; NVIDIA's driver returned other values than lavapipe's),
// so it only ever sees non-negative ones here.
int mod_floor(int i, int period) { return i >= 0 ? i % period : period - 1 - (-(i + 1)) % period; }
// cv2 BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba).
int reflect101(int i, int n)
{
    if (n == 1) return 0;
    int period = 2 * n - 2;
    int m = mod_floor(i, period);
    return m < n ? m : period - m;
}
// scipy 'reflect' (half-sample symmetric: dcba|abcd|dcba).
int reflect_half(int i, int n)
{
    int period = 2 * n;
    int m = mod_floor(i, period);
    return m < n ? m : period - 1 - m;
}

// scipy.ndimage.zoom(order=1) of the centre crop, as in CIFAR-10-C's clipped_zoom:
// source coordinate (along one axis of size n) of output index o for zoom zp/100.
float zoom_source(int o, int n, int zp)
{
    int ch = (n * 100 + zp - 1) / zp;          // ceil(n / z): the crop
    int top = (n - ch) / 2;
    int zn = (ch * zp + 50) / 100;             // round(ch * z): the zoomed size
    int trim = (zn - n) / 2;
    if (zn <= 1) return float(top);
    return float(top) + float((o + trim) * (ch - 1)) / float(zn - 1);
}

// Output bytes: clamp to [0, 255] and round to nearest, halves up. Exact halves are common
// (contrast 0.5, brightness + 25.5, ...) and fp32 lands on either side of them, so the
// rounding point sits 2.9e-4 below the half: floor(v + 0.50029) (the C reference agrees).
uint to_byte(float v) { return uint(clamp(v, 0.0, 255.0) + 0.50029); }

// ---- fog: a plasma-like fractal (approximates the diamond-square plasma of CIFAR-10-C) --
// Map M x M (M = ip[0], a power of two), levels l = 0 .. ip[1]-1 of value noise: a periodic
// lattice of spacing M >> (l + 1) holding uniforms in [-1, 1], bilinearly interpolated,
// weighted fp[1]^l (fp[1] = wibbledecay^-2, as the diamond-square perturbations decay).
float fog_lattice(uint key, int l, int i, int j)
{
    return u01(rng_bits(key, (uint(l) << 16) | (uint(i) << 8) | uint(j))) * 2.0 - 1.0;
}
float fog_raw(uint key, int y, int x)
{
    int m = p.ip[0];
    float s = 0.0, amp = 1.0;
    for (int l = 0; l < p.ip[1]; l++) {
        int sp = m >> (l + 1), cells = m / sp;
        int gy = y / sp, gx = x / sp;
        float fy = float(y - gy * sp) / float(sp), fx = float(x - gx * sp) / float(sp);
        int gy1 = (gy + 1) % cells, gx1 = (gx + 1) % cells;
        float v00 = fog_lattice(key, l, gy, gx), v01 = fog_lattice(key, l, gy, gx1);
        float v10 = fog_lattice(key, l, gy1, gx), v11 = fog_lattice(key, l, gy1, gx1);
        s += amp * ((v00 * (1.0 - fx) + v01 * fx) * (1.0 - fy) + (v10 * (1.0 - fx) + v11 * fx) * fy);
        amp *= p.fp[1];
    }
    return s;
}
