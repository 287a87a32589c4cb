# conv2d (src/nn/conv2d.c): forward, input gradient, weight gradient (+ its slice reduction),
# each as a shared-memory tiled variant (GPUs) and a texel-buffer variant (lavapipe).
vka_add_shader(NAME conv2d_fwd_tiled SOURCE conv2d_fwd.comp)
vka_add_shader(NAME conv2d_fwd_texel SOURCE conv2d_fwd.comp DEFINES TEXEL)
vka_add_shader(NAME conv2d_bwd_data_tiled SOURCE conv2d_bwd_data.comp)
vka_add_shader(NAME conv2d_bwd_data_texel SOURCE conv2d_bwd_data.comp DEFINES TEXEL)
vka_add_shader(NAME conv2d_bwd_weight_tiled SOURCE conv2d_bwd_weight.comp)
vka_add_shader(NAME conv2d_bwd_weight_texel SOURCE conv2d_bwd_weight.comp DEFINES TEXEL)
vka_add_shader(NAME conv2d_bwd_weight_reduce SOURCE conv2d_bwd_weight_reduce.comp)
# lavapipe's stride-1, 3-wide forward and input gradient (RQ columns x KB channels per invocation):
vka_add_shader(NAME conv2d_row SOURCE conv2d_row.comp DEFINES RQ=14 KB=8)
vka_add_shader(NAME conv2d_row_vec4 SOURCE conv2d_row.comp DEFINES RQ=16 KB=8 VEC4)
vka_add_shader(NAME conv2d_bwd_weight_row SOURCE conv2d_bwd_weight_row.comp DEFINES KV=2)
vka_add_shader(NAME conv2d_pack SOURCE conv2d_pack.comp)
