# Finds standalone Asio (asio.hpp; Debian: libasio-dev), which the durable::asio component needs.
# Used by durable's own build and by the installed durable-config.cmake. Sets
# DURABLE_ASIO_INCLUDE_DIR (a cache entry: point it at another Asio) and defines the imported
# target durable::asio_dependency when Asio is found. Asio ships no CMake or pkg-config files,
# so this looks for the header.
find_path(DURABLE_ASIO_INCLUDE_DIR asio.hpp DOC "Where standalone Asio's asio.hpp is")
if(DURABLE_ASIO_INCLUDE_DIR AND NOT TARGET durable::asio_dependency)
  add_library(durable::asio_dependency INTERFACE IMPORTED)
  set_target_properties(durable::asio_dependency PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${DURABLE_ASIO_INCLUDE_DIR}")
endif()
