// n / d for a divisor d fixed per dispatch, by multiply-high (Granlund and
// Montgomery 1994, the round-up variant): exact for every uint n. An integer
// division is a scalar loop over the lanes on CPU drivers (lavapipe) and slow
// on GPUs; this is a 32x32->64 multiply, a subtract, an add and two shifts.
// The host makes (magic, shifts) with vka_fastdiv_make (src/nn/fastdiv.h).
uint fastdiv(uint n, uint magic, uint shifts)
{
    uint hi, lo;
    umulExtended(n, magic, hi, lo);
    return (hi + ((n - hi) >> (shifts & 0xffu))) >> (shifts >> 8);
}
