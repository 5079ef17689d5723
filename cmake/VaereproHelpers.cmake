# Small helpers so that chapters/ and tests/ stay one line each
# (in the spirit of flashlight's build_test()).

# add_chapter(NAME SOURCE...): a chapter program linked against the library.
function(add_chapter name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE vaerepro)
  if(VAEREPRO_PCH)
    target_precompile_headers(${name} REUSE_FROM vaerepro)
  endif()
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/bin")
endfunction()

# add_vaerepro_test(NAME SOURCE...): a GoogleTest binary registered with ctest.
function(add_vaerepro_test name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE vaerepro GTest::gtest GTest::gtest_main)
  if(VAEREPRO_PCH)
    target_precompile_headers(${name} REUSE_FROM vaerepro)
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60)
endfunction()
