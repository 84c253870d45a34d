# Parity of the GPU sampler with the CPU Sampler and LogprobsCalculator.
list(APPEND supra_cuda_test_sources ${CMAKE_CURRENT_SOURCE_DIR}/sampling_test.cc)
