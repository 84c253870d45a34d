# Parity tests of the linear-attention kernels against cpu::RecurrentAttention,
# cpu::ChunkedAttention and cpu::GroupNorm.
list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/attention_test.cc)
# Both decode kernels (cluster and streaming) against the CPU and each other,
# at batch 1-257, plus their timing.
list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/recurrent_attention_test.cc)
