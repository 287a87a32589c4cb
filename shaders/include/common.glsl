// Shared by every kernel: version, extensions, and the flat invocation index.
#extension GL_EXT_control_flow_attributes : require

// Dispatches larger than maxComputeWorkGroupCount[0] spill into y; the flat
// index counts invocations across both.
uint flat_invocation_index()
{
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}

#define NEG_INF uintBitsToFloat(0xff800000u)
