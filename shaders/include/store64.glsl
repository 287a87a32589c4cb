// Pairs of floats stored as one 64-bit word, for lavapipe's packed conv kernels only (the
// device has shaderInt64: vka_conv2d_packed_device checks it; the includer enables
// GL_ARB_gpu_shader_int64). lavapipe stores a vector one component at a time in a loop over
// the 8 lanes, with a mask test and a bounds check per lane and component, so a pair goes out
// in half the steps as one uint64 (perf-log 52: 3-4% off the conv passes that store pairs; the
// same trick for vec4 as u64vec2 in the batchnorm and pack kernels measured nothing). The bits
// are the floats' own: nothing is converted.
uint64_t bits64(vec2 v) { return packUint2x32(floatBitsToUint(v)); }
vec2 floats_of(uint64_t b) { return uintBitsToFloat(unpackUint2x32(b)); }
