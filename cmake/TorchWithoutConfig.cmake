# LibTorch as an imported target `torch` from a folder with include/ and lib/
# (python3's torch package: python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))'),
# without LibTorch's own CMake files. scripts/gpu-check.sh falls back to it when
# find_package(Torch) fails on a GPU machine (Torch's CUDA config looks for a
# complete CUDA toolkit; the suite compiles no CUDA code and needs none).
#   VAEREPRO_TORCH_ROOT       the folder
#   VAEREPRO_TORCH_CXX11_ABI  1 (LibTorch 2.7 and later, Debian's) or 0:
#                             python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))'
set(VAEREPRO_TORCH_CXX11_ABI 1 CACHE STRING "_GLIBCXX_USE_CXX11_ABI of that LibTorch")
set(_torch_lib "${VAEREPRO_TORCH_ROOT}/lib")
foreach(_name torch torch_cpu c10)
  if(NOT EXISTS "${_torch_lib}/lib${_name}.so")
    message(FATAL_ERROR "VAEREPRO_TORCH_ROOT=${VAEREPRO_TORCH_ROOT}: no lib/lib${_name}.so")
  endif()
endforeach()
set(_torch_libs "${_torch_lib}/libtorch.so" "${_torch_lib}/libtorch_cpu.so" "${_torch_lib}/libc10.so")
if(EXISTS "${_torch_lib}/libtorch_cuda.so")
  # Linked even though no symbol of it is used: loading it registers CUDA
  # with the dispatcher (what TorchConfig.cmake does too).
  list(APPEND _torch_libs "-Wl,--no-as-needed,${_torch_lib}/libtorch_cuda.so,--as-needed" "${_torch_lib}/libc10_cuda.so")
  set(VAEREPRO_TORCH_HAS_CUDA ON)
else()
  set(VAEREPRO_TORCH_HAS_CUDA OFF)
endif()
find_package(Threads REQUIRED)
add_library(torch INTERFACE IMPORTED)
set_target_properties(torch PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${VAEREPRO_TORCH_ROOT}/include;${VAEREPRO_TORCH_ROOT}/include/torch/csrc/api/include"
  INTERFACE_LINK_LIBRARIES "${_torch_libs};Threads::Threads"
  INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=${VAEREPRO_TORCH_CXX11_ABI}")
# The programs find the libraries where they are (no LD_LIBRARY_PATH needed).
list(APPEND CMAKE_BUILD_RPATH "${_torch_lib}")
message(STATUS "LibTorch without its CMake files: ${VAEREPRO_TORCH_ROOT} (CUDA: ${VAEREPRO_TORCH_HAS_CUDA})")
