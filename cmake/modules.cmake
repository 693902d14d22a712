# Module helpers.
#
# Every module's headers are included as "<module>/<file>.h". The project root is never
# on the include path: each module target exports a directory in the build tree that holds
# one symlink, <module> -> the module's source folder. A target sees a module's headers only
# when it links that module, so an include against the dependency direction fails the build.

set(MODELSYNC_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough)

function(modelsync_flags target)
  target_compile_options(${target} PRIVATE ${MODELSYNC_WARNINGS})
  if(MODELSYNC_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(MODELSYNC_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND NOT MODELSYNC_FUZZ)
    # One sanitizer runtime per process, shared as GCC's is: clang would link a static copy
    # into each executable, and a program of ours started by Python (whose interpreter gets
    # the shared copy preloaded for libmodelsync, tests/CMakeLists.txt) would hold two.
    execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libclang_rt.asan-x86_64.so
                    OUTPUT_VARIABLE clang_asan_rt OUTPUT_STRIP_TRAILING_WHITESPACE)
    get_filename_component(clang_rt_dir "${clang_asan_rt}" DIRECTORY)
    add_link_options(-shared-libsan "-Wl,-rpath,${clang_rt_dir}")
  endif()
endif()

# modelsync_module(<name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
function(modelsync_module name)
  cmake_parse_arguments(M "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(inc "${CMAKE_BINARY_DIR}/include/${name}")
  file(MAKE_DIRECTORY "${inc}")
  if(NOT EXISTS "${inc}/${name}")
    file(CREATE_LINK "${CMAKE_CURRENT_SOURCE_DIR}" "${inc}/${name}" SYMBOLIC)
  endif()
  add_library(modelsync_${name} STATIC ${M_SOURCES})
  add_library(modelsync::${name} ALIAS modelsync_${name})
  target_include_directories(modelsync_${name} PUBLIC "${inc}")
  target_link_libraries(modelsync_${name} PUBLIC ${M_PUBLIC_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  modelsync_flags(modelsync_${name})
endfunction()

# Options for the test executables' own sources only (the code under test, the emulator and
# the test support libraries keep the build's): tools/build.sh passes -O0 for the normal
# build, where doctest's assertion macros made the tests ~45 % of its compile time at -O2.
set(MODELSYNC_TEST_OPTIONS "" CACHE STRING "compile options for the doctest executables")

# What every doctest executable is compiled with, and so the target that holds their shared
# precompiled header (tests/CMakeLists.txt) too: a precompiled header is only used by a
# compile whose options and macros are the ones it was built with.
function(modelsync_test_options target)
  modelsync_flags(${target})
  if(MODELSYNC_TEST_OPTIONS)
    target_compile_options(${target} PRIVATE ${MODELSYNC_TEST_OPTIONS})
  endif()
  target_compile_definitions(${target} PRIVATE MODELSYNC_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    BOOST_ALL_NO_LIB)
endfunction()

# modelsync_test(<name> SOURCES ... DEPS ... [LABELS ...])
# A doctest executable registered with ctest.
function(modelsync_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} modelsync_doctest_main)
  modelsync_test_options(${name})
  target_precompile_headers(${name} REUSE_FROM modelsync_test_pch)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "MODELSYNC_BUILD_DIR=${CMAKE_BINARY_DIR};MODELSYNC_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
