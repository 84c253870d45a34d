# The small-batch projection kernel (decode GEMV on the tensor cores).
target_sources(supra_cuda PRIVATE ${CMAKE_CURRENT_LIST_DIR}/gemv.cu)
