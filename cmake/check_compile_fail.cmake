# Compile-failure check, run by CTest as:
#   cmake -DCOMPILER=<c++> -DSOURCE=<file.cpp> -DINCLUDE_DIR=<dir> [-DEXTRA_FLAGS=<;-list>]
#         -P check_compile_fail.cmake
# The first line of SOURCE must be `// expect-error: <regex>` (CMake regex syntax). The test
# passes only if compiling SOURCE fails AND the compiler output matches the regex.

foreach(_var COMPILER SOURCE INCLUDE_DIR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "check_compile_fail.cmake: -D${_var}=... is required")
  endif()
endforeach()

file(STRINGS "${SOURCE}" _first_line LIMIT_COUNT 1)
string(REPLACE "\\;" ";" _first_line "${_first_line}")
if(NOT _first_line MATCHES "^//[ \t]*expect-error:[ \t]*(.*[^ \t\r])[ \t\r]*$")
  message(FATAL_ERROR
    "${SOURCE}: the first line must be `// expect-error: <regex>`, found:\n  ${_first_line}")
endif()
set(_regex "${CMAKE_MATCH_1}")

execute_process(
  COMMAND "${COMPILER}" -std=c++20 -fsyntax-only "-I${INCLUDE_DIR}" ${EXTRA_FLAGS} "${SOURCE}"
  RESULT_VARIABLE _rc
  OUTPUT_VARIABLE _out
  ERROR_VARIABLE _out
  INPUT_FILE /dev/null)

# message(NOTICE) prints verbatim; FATAL_ERROR (which re-wraps text) only gives the verdict.
if(_rc EQUAL 0)
  message(NOTICE "Compiler output:\n${_out}")
  message(NOTICE "Expected an error matching: ${_regex}")
  message(FATAL_ERROR "${SOURCE} compiled successfully but was expected to fail to compile")
endif()
if(NOT _out MATCHES "${_regex}")
  message(NOTICE "Compiler output:\n${_out}")
  message(NOTICE "Expected an error matching: ${_regex}")
  message(FATAL_ERROR "${SOURCE} failed to compile (exit ${_rc}) as expected, "
    "but its output does not match the expect-error regex")
endif()
message(STATUS "${SOURCE}: failed to compile as expected (matched `${_regex}`)")
