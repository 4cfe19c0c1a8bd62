# Test discovery for catch_discover_tests() (Catch2 v2), used instead of Catch2's own
# CatchAddTests.cmake: tests/CMakeLists.txt points Catch.cmake's _CATCH_DISCOVER_TESTS_SCRIPT
# here. Same inputs (-D TEST_EXECUTABLE=... etc., see Catch.cmake), two fixes:
#   * Catch2 2.13's script splits the test list as a CMake list, so a test name with an
#     unbalanced '[' or a ';' (e.g. "maps to [0, 1)") swallows every following test into one
#     bogus CTest entry. Here names are split on newlines only and never re-parsed as lists.
#   * every discovered test gets its Catch2 tags as CTest LABELS ("[threads]" -> label threads),
#     so `ctest --preset <p> -L threads` runs just the threaded tests.

set(_ctest_file "${CTEST_FILE}")
set(_exe "${TEST_EXECUTABLE}")
set(_workdir "${TEST_WORKING_DIR}")
set(_prefix "${TEST_PREFIX}")
set(_suffix "${TEST_SUFFIX}")
set(_spec ${TEST_SPEC})
set(_extra_args ${TEST_EXTRA_ARGS})
set(_properties ${TEST_PROPERTIES})

if(NOT EXISTS "${_exe}")
  message(FATAL_ERROR "Specified test executable '${_exe}' does not exist")
endif()
if(TEST_REPORTER OR TEST_OUTPUT_DIR)
  message(FATAL_ERROR "durable's CatchAddTests.cmake does not support REPORTER/OUTPUT_DIR")
endif()

# Control characters never occur in test names: use them to protect ';', '[' and ']' while the
# output is turned into a CMake list.
string(ASCII 1 _SEMI)
string(ASCII 2 _LBR)
string(ASCII 3 _RBR)

# _durable_lines(<out-var> <text>): the non-empty lines of <text>, protected as above.
function(_durable_lines out text)
  string(REPLACE ";" "${_SEMI}" text "${text}")
  string(REPLACE "[" "${_LBR}" text "${text}")
  string(REPLACE "]" "${_RBR}" text "${text}")
  string(REPLACE "\r" "" text "${text}")
  string(REPLACE "\n" ";" text "${text}")
  set(lines "")
  foreach(line IN LISTS text)
    if(NOT line STREQUAL "")
      list(APPEND lines "${line}")
    endif()
  endforeach()
  set(${out} "${lines}" PARENT_SCOPE)
endfunction()

function(_durable_unprotect out text)
  string(REPLACE "${_SEMI}" ";" text "${text}")
  string(REPLACE "${_LBR}" "[" text "${text}")
  string(REPLACE "${_RBR}" "]" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

# _durable_list_names(<out-var> <spec>...): protected names of the tests matching <spec>.
function(_durable_list_names out)
  execute_process(
    COMMAND ${TEST_EXECUTOR} "${_exe}" ${ARGN} --list-test-names-only
    OUTPUT_VARIABLE output
    ERROR_VARIABLE error
    RESULT_VARIABLE result
    WORKING_DIRECTORY "${_workdir}"
    INPUT_FILE /dev/null)
  # Catch2 v2 exits with the number of tests listed (modulo 256); a crash gives a string.
  if(NOT result MATCHES "^[0-9]+$")
    message(FATAL_ERROR "Error running test executable '${_exe}' ${ARGN}:\n"
      "  Result: ${result}\n  Output: ${output}\n  Errors: ${error}")
  endif()
  _durable_lines(names "${output}")
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

# _durable_bracket(<out-var> <text>): <text> as a CMake bracket argument.
function(_durable_bracket out text)
  set(eq "=")
  while(text MATCHES "\\]${eq}(\\]|$)")
    string(APPEND eq "=")
  endwhile()
  set(${out} "[${eq}[${text}]${eq}]" PARENT_SCOPE)
endfunction()

_durable_list_names(_names ${_spec})
if(NOT _names)
  message(WARNING "Test executable '${_exe}' contains no tests!")
endif()

# Tags -> labels. `--list-tags` prints lines like "   3  [threads]".
execute_process(
  COMMAND ${TEST_EXECUTOR} "${_exe}" ${_spec} --list-tags
  OUTPUT_VARIABLE _tags_output
  RESULT_VARIABLE _tags_result
  WORKING_DIRECTORY "${_workdir}"
  INPUT_FILE /dev/null)
_durable_lines(_tag_lines "${_tags_output}")
foreach(_line IN LISTS _tag_lines)
  _durable_unprotect(_line "${_line}")
  if(NOT _line MATCHES "^ *[0-9]+ +\\[([^];[]+)\\]$")
    continue()
  endif()
  set(_tag "${CMAKE_MATCH_1}")
  if(_tag MATCHES "^[.!]")   # hidden/special tags ([.], [!mayfail], ...) are no labels
    continue()
  endif()
  _durable_list_names(_tagged "[${_tag}]")
  foreach(_name IN LISTS _tagged)
    string(MD5 _key "${_name}")
    list(APPEND _labels_${_key} "${_tag}")
  endforeach()
endforeach()

set(_script "")
set(_all_tests "")
foreach(_pname IN LISTS _names)
  _durable_unprotect(_name "${_pname}")
  string(MD5 _key "${_pname}")
  # Names starting with '#' are listed quoted; the quoted form is also the right test spec.
  set(_display "${_name}")
  if(_name MATCHES "^\"(#.*)\"$")
    set(_display "${CMAKE_MATCH_1}")
    set(_test_spec "${_name}")
  else()
    # Escape the characters Catch2's test-spec parser would interpret.
    set(_test_spec "${_name}")
    foreach(_c "\\" "," "[" "]" "\"" "~")
      string(REPLACE "${_c}" "\\${_c}" _test_spec "${_test_spec}")
    endforeach()
  endif()
  set(_ctest_name "${_prefix}${_display}${_suffix}")

  _durable_bracket(_b_name "${_ctest_name}")
  _durable_bracket(_b_exe "${_exe}")
  _durable_bracket(_b_spec "${_test_spec}")
  _durable_bracket(_b_wd "${_workdir}")
  # Command: [executor...] <exe> <spec> [extra args...], each a bracket argument.
  set(_cmd "")
  foreach(_a IN LISTS TEST_EXECUTOR)
    _durable_bracket(_b "${_a}")
    string(APPEND _cmd " ${_b}")
  endforeach()
  string(APPEND _cmd " ${_b_exe} ${_b_spec}")
  foreach(_a IN LISTS _extra_args)
    _durable_bracket(_b "${_a}")
    string(APPEND _cmd " ${_b}")
  endforeach()
  set(_props "")
  foreach(_p IN LISTS _properties)
    _durable_bracket(_b "${_p}")
    string(APPEND _props " ${_b}")
  endforeach()
  string(APPEND _script "add_test(${_b_name}${_cmd})\n")
  string(APPEND _script
    "set_tests_properties(${_b_name} PROPERTIES WORKING_DIRECTORY ${_b_wd}${_props})\n")
  if(_labels_${_key})
    list(REMOVE_DUPLICATES _labels_${_key})
    _durable_bracket(_b_labels "${_labels_${_key}}")
    string(APPEND _script "set_tests_properties(${_b_name} PROPERTIES LABELS ${_b_labels})\n")
  endif()
  _durable_bracket(_b "${_ctest_name}")
  string(APPEND _all_tests " ${_b}")
endforeach()

if(TEST_LIST)
  string(APPEND _script "set(${TEST_LIST}${_all_tests})\n")
endif()
file(WRITE "${_ctest_file}" "${_script}")
