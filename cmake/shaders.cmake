# vka_add_shader(NAME <symbol> SOURCE <file.comp> [DEFINES A=1 B ...])
#
# Compiles one variant of a compute shader with glslangValidator into
#   ${VKA_SHADER_OUT}/<symbol>.spv  (validated by spirv-val in the tests)
#   ${VKA_SHADER_OUT}/<symbol>.spv.h (const uint32_t vka_spv_<symbol>[])
# glslang writes a depfile, so editing a shared include rebuilds exactly the
# shaders that include it.
function(vka_add_shader)
  cmake_parse_arguments(S "" "NAME;SOURCE" "DEFINES" ${ARGN})
  set(src ${VKA_SHADER_DIR}/${S_SOURCE})
  set(spv ${VKA_SHADER_OUT}/${S_NAME}.spv)
  set(hdr ${VKA_SHADER_OUT}/${S_NAME}.spv.h)
  set(dep ${VKA_SHADER_OUT}/${S_NAME}.d)
  set(defs "")
  foreach(d ${S_DEFINES})
    list(APPEND defs -D${d})
  endforeach()
  set(flags -V --target-env vulkan1.1 -I${VKA_SHADER_DIR}/include ${defs})
  add_custom_command(
    OUTPUT ${spv} ${hdr}
    COMMAND ${GLSLANG_VALIDATOR} ${flags} --depfile ${dep} -o ${spv} ${src}
    COMMAND ${GLSLANG_VALIDATOR} ${flags} --vn vka_spv_${S_NAME} -o ${hdr} ${src}
    DEPENDS ${src}
    DEPFILE ${dep}
    COMMENT "glslang ${S_SOURCE} -> ${S_NAME}"
    VERBATIM)
  set_property(GLOBAL APPEND PROPERTY VKA_SHADER_NAMES ${S_NAME})
  set(VKA_SHADER_HEADERS ${VKA_SHADER_HEADERS} ${hdr} PARENT_SCOPE)
endfunction()

# vka_add_shader_family(NAME <base> SOURCE <file.comp> [DEFINES ...])
#
# The four load variants of one kernel: <base>, <base>_texel, <base>_vec4 and <base>_vec4_texel
# (DEFINES plus nothing, TEXEL, VEC4, VEC4 TEXEL). A macro, so the variants' headers reach the
# caller's VKA_SHADER_HEADERS as vka_add_shader's do.
macro(vka_add_shader_family)
  cmake_parse_arguments(F "" "NAME;SOURCE" "DEFINES" ${ARGN})
  vka_add_shader(NAME ${F_NAME} SOURCE ${F_SOURCE} DEFINES ${F_DEFINES})
  vka_add_shader(NAME ${F_NAME}_texel SOURCE ${F_SOURCE} DEFINES ${F_DEFINES} TEXEL)
  vka_add_shader(NAME ${F_NAME}_vec4 SOURCE ${F_SOURCE} DEFINES ${F_DEFINES} VEC4)
  vka_add_shader(NAME ${F_NAME}_vec4_texel SOURCE ${F_SOURCE} DEFINES ${F_DEFINES} VEC4 TEXEL)
endmacro()
