# One helper per kind of target (shared/STYLE.md "Build and tooling").

set(TS_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Woverloaded-virtual -Wimplicit-fallthrough
    -Wno-missing-field-initializers)  # designated initializers leave the rest defaulted on purpose

if(TS_SANITIZE)
  add_compile_options(-fsanitize=${TS_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${TS_SANITIZE})
endif()

# Warnings (and -Werror) for our own code only, never for generated code.
function(ts_apply_warnings target)
  target_compile_options(${target} PRIVATE ${TS_WARNINGS})
  if(TS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# ts_add_library(NAME SOURCES a.cpp ... DEPS PUBLIC_DEPS... PRIVATE_DEPS ...)
# Creates target ts_<NAME> (alias ts::<NAME>); headers are included as "<module>/file.hpp" from src/.
function(ts_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(ARG_SOURCES)
    add_library(ts_${name} STATIC ${ARG_SOURCES})
    target_include_directories(ts_${name} PUBLIC ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(ts_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
    ts_apply_warnings(ts_${name})
  else()
    add_library(ts_${name} INTERFACE)
    target_include_directories(ts_${name} INTERFACE ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(ts_${name} INTERFACE ${ARG_DEPS})
  endif()
  add_library(ts::${name} ALIAS ts_${name})
endfunction()

# ts_add_executable(NAME SOURCES ... DEPS ...) -> build/bin/NAME
function(ts_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  ts_apply_warnings(${name})
endfunction()

# ts_add_test(NAME SOURCES ... DEPS ... LABELS unit|mosquitto|... [TIMEOUT s])
# A GoogleTest binary registered with CTest (test discovery at run time).
function(ts_add_test name)
  if(NOT TS_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
      TS_SHARED_DIR="${TS_SHARED_DIR}" TS_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
      TS_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  ts_apply_warnings(${name})
  include(GoogleTest)
  # Labels and timeout are set by a script of ours that CTest runs after discovery: passed
  # through gtest_discover_tests(PROPERTIES), a list of labels is split into property/value
  # pairs (only the first label stuck, and TIMEOUT was lost).
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST TEST_LIST ${name}_TESTS)
  set(props ${CMAKE_CURRENT_BINARY_DIR}/${name}_properties.cmake)
  file(WRITE ${props}
       "if(${name}_TESTS)\n"
       "  set_tests_properties(\${${name}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\" TIMEOUT ${ARG_TIMEOUT})\n"
       "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${props})
endfunction()

# ts_add_fuzzer(NAME SOURCES ... DEPS ... SEEDS dir)
# With TS_BUILD_FUZZ (clang): a libFuzzer binary. Always: a replay test that runs every seed through
# the same entry point as an ordinary unit test, so the seeds are exercised with GCC too.
function(ts_add_fuzzer name)
  cmake_parse_arguments(ARG "" "SEEDS" "SOURCES;DEPS" ${ARGN})
  if(TS_BUILD_FUZZ)
    add_executable(${name} ${ARG_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE ${ARG_DEPS})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  endif()
  if(TS_BUILD_TESTS)
    add_executable(${name}_replay ${ARG_SOURCES} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.cpp)
    target_link_libraries(${name}_replay PRIVATE ${ARG_DEPS})
    set_target_properties(${name}_replay PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
    add_test(NAME ${name}.replay_seeds COMMAND ${name}_replay ${ARG_SEEDS})
    set_tests_properties(${name}.replay_seeds PROPERTIES LABELS "unit;fuzz" TIMEOUT 300)
  endif()
endfunction()
