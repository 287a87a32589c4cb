# conv2d (src/nn/conv2d.c): forward, input gradient, weight gradient (+ its slice reduction),
# each as a shared-memory tiled variant (GPUs) and a texel-buffer variant (lavapipe).
vka_add_shader(NAME conv2d_fwd_tiled SOURCE conv2d_fwd.comp)
vka_add_shader(NAME conv2d_fwd_texel SOURCE conv2d_fwd.comp DEFINES TEXEL)
# ... and the forward on cooperative matrices (VK_NV_cooperative_matrix, fp16 inputs), for
# devices that offer them and pass conv2d_coop.c's self-test.
vka_add_shader(NAME conv2d_fwd_coop SOURCE conv2d_fwd.comp DEFINES COOP)
vka_add_shader(NAME conv2d_fwd_coop_emulated SOURCE conv2d_fwd.comp DEFINES COOP COOP_EMULATE)  # its test
vka_add_shader(NAME conv2d_bwd_data_coop SOURCE conv2d_bwd_data.comp DEFINES COOP)
vka_add_shader(NAME conv2d_bwd_data_coop_emulated SOURCE conv2d_bwd_data.comp DEFINES COOP COOP_EMULATE)
vka_add_shader(NAME conv2d_bwd_weight_coop SOURCE conv2d_bwd_weight.comp DEFINES COOP)
vka_add_shader(NAME conv2d_bwd_weight_coop_emulated SOURCE conv2d_bwd_weight.comp DEFINES COOP COOP_EMULATE)
vka_add_shader(NAME conv2d_bwd_data_tiled SOURCE conv2d_bwd_data.comp)
vka_add_shader(NAME conv2d_bwd_data_texel SOURCE conv2d_bwd_data.comp DEFINES TEXEL)
vka_add_shader(NAME conv2d_bwd_weight_tiled SOURCE conv2d_bwd_weight.comp)
vka_add_shader(NAME conv2d_bwd_weight_texel SOURCE conv2d_bwd_weight.comp DEFINES TEXEL)
vka_add_shader(NAME conv2d_bwd_weight_reduce SOURCE conv2d_bwd_weight_reduce.comp)
vka_add_shader(NAME conv2d_bwd_weight_reduce_texel SOURCE conv2d_bwd_weight_reduce.comp DEFINES TEXEL)
vka_add_shader(NAME conv2d_bwd_weight_reduce_vec4 SOURCE conv2d_bwd_weight_reduce.comp DEFINES VEC4)
# lavapipe's channels-packed path (src/nn/conv2d_packed.c): the packing passes, then the
# forward / input-gradient kernel with RQ output columns x KV vec4 of channels per invocation
# (one variant per run length, picked by output width), and the weight gradient.
vka_add_shader(NAME conv2d_pack SOURCE conv2d_pack.comp)
vka_add_shader(NAME conv2d_pack4 SOURCE conv2d_pack4.comp)
vka_add_shader(NAME conv2d_pack_weight SOURCE conv2d_pack_weight.comp)
vka_add_shader(NAME conv2d_packed_rq14 SOURCE conv2d_packed.comp DEFINES RQ=14 KV=2)
vka_add_shader(NAME conv2d_packed_rq8 SOURCE conv2d_packed.comp DEFINES RQ=8 KV=2)
vka_add_shader(NAME conv2d_packed_rq7 SOURCE conv2d_packed.comp DEFINES RQ=7 KV=2)
vka_add_shader(NAME conv2d_packed_rq4 SOURCE conv2d_packed.comp DEFINES RQ=4 KV=2)
# ... and the same with one output column's accumulators per register block (JB = 1) and the
# next step's weights fetched ahead (W_AHEAD), which conv2d_packed.c picks for inputs of at
# most 32 channels (docs/perf-log.md, entries 30 and 32).
vka_add_shader(NAME conv2d_packed_rq14_jb1 SOURCE conv2d_packed.comp DEFINES RQ=14 KV=2 JB=1 W_AHEAD)
vka_add_shader(NAME conv2d_packed_rq8_jb1 SOURCE conv2d_packed.comp DEFINES RQ=8 KV=2 JB=1 W_AHEAD)
vka_add_shader(NAME conv2d_packed_rq7_jb1 SOURCE conv2d_packed.comp DEFINES RQ=7 KV=2 JB=1 W_AHEAD)
vka_add_shader(NAME conv2d_packed_rq4_jb1 SOURCE conv2d_packed.comp DEFINES RQ=4 KV=2 JB=1 W_AHEAD)
vka_add_shader(NAME conv2d_bwd_weight_packed SOURCE conv2d_bwd_weight_packed.comp DEFINES KV=2)
vka_add_shader(NAME conv2d_bwd_weight_packed_qc4 SOURCE conv2d_bwd_weight_packed.comp DEFINES KV=2 QC=4)
vka_add_shader(NAME conv2d_bwd_weight_packed_qc8 SOURCE conv2d_bwd_weight_packed.comp DEFINES KV=2 QC=8)
