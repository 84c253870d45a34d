# Parity tests of the linear-attention kernels against cpu::RecurrentAttention,
# cpu::ChunkedAttention and cpu::GroupNorm.
list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/attention_test.cc)
