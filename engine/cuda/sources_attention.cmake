# The linear-attention kernels with GroupNorm fused: recurrent (decode) and
# chunked (prefill).
target_sources(supra_cuda PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/chunked_attention.cu
  ${CMAKE_CURRENT_LIST_DIR}/chunked_attention_outputs.cu
  ${CMAKE_CURRENT_LIST_DIR}/chunked_attention_two_pass.cu
  ${CMAKE_CURRENT_LIST_DIR}/recurrent_attention.cu
)
