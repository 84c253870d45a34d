# The element-wise and row-wise kernels of the forward pass (embedding, RMSNorm,
# feature map + qk norm + RoPE, SwiGLU).
target_sources(supra_cuda PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/embedding.cu
  ${CMAKE_CURRENT_LIST_DIR}/feature_map_rope.cu
  ${CMAKE_CURRENT_LIST_DIR}/rms_norm.cu
  ${CMAKE_CURRENT_LIST_DIR}/swiglu.cu
)
