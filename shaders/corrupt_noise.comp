#version 450
#extension GL_GOOGLE_include_directive : require
#include "corrupt_common.glsl"
// Per-pixel noise: gaussian, shot (Poisson), impulse (salt and pepper), speckle. Every
// (image, channel, y, x) draws from its own counter: stream S_NOISE, image first_image + b,
// counter (ch * H + y) * W + x. Parameters: see vka_corrupt in src/data/corrupt.c.
#include "corrupt_bytes.glsl"

// Poisson(lam): exact inversion of the CDF for lam < fp[1] (one uniform, at most 256
// terms), else the normal approximation floor(lam + sqrt(lam) z + 1/2), at least 0.
float poisson(float lam, uint key, uint idx)
{
    if (lam < p.fp[1]) {
        float u = u01(rng_bits(key, 2u * idx));
        float pk = exp(-lam), cdf = pk;
        int k = 0;
        while (cdf <= u && k < 256) {
            k++;
            pk *= lam / float(k);
            cdf += pk;
        }
        return float(k);
    }
    return max(floor(lam + sqrt(lam) * normal01(key, idx) + 0.5), 0.0);
}

float corrupt_value(uint b, uint ch, int y, int x)
{
    float v = px(b, ch, y, x);
    uint key = rng_key(S_NOISE, p.first_image + b);
    uint idx = (ch * p.h + uint(y)) * p.w + uint(x);
    float c = p.fp[0];
    switch (p.type) {
    case T_GAUSSIAN_NOISE: return (v / 255.0 + c * normal01(key, idx)) * 255.0;
    case T_SHOT_NOISE: return poisson(v / 255.0 * c, key, idx) / c * 255.0;
    case T_IMPULSE_NOISE: {
        uint u = rng_bits(key, idx) >> 8;
        return u < uint(p.ip[0]) ? 0.0 : u < uint(p.ip[1]) ? 255.0 : v;
    }
    case T_SPECKLE_NOISE: {
        float x01 = v / 255.0;
        return (x01 + x01 * c * normal01(key, idx)) * 255.0;
    }
    }
    return v;
}
