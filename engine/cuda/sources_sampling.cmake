# Sampling on the GPU (sampling.h): the kernel and its launcher, and the host
# side that stages each decode step's SampleSpecs.
target_sources(supra_cuda PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/device_sampler.cc
  ${CMAKE_CURRENT_LIST_DIR}/sampling.cu
)
