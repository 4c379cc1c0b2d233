# CfInstall.cmake -- install rules: the libraries, the header, a pkg-config file and a
# CMake package (cfutures::cfutures, cfutures::cfutures_static).
#
# The pkg-config file carries absolute paths, and the prefix is only known for certain at
# install time (`cmake --install --prefix P` overrides the configured one), so the file is
# written in two steps: at configure time everything but the prefix, at install time the
# prefix, just before the rule that copies it (install rules run in the order given).
# The CMake package needs no such care: its files locate the prefix from their own path.
include(CMakePackageConfigHelpers)

set(cf_cmake_dir "${CMAKE_INSTALL_LIBDIR}/cmake/cfutures")

install(TARGETS cfutures cfutures_static
        EXPORT cfuturesTargets
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(FILES "${PROJECT_SOURCE_DIR}/include/cfutures.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

install(EXPORT cfuturesTargets
        NAMESPACE cfutures::
        FILE cfuturesTargets.cmake
        DESTINATION "${cf_cmake_dir}")
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/cfuturesConfig.cmake.in"
                              "${PROJECT_BINARY_DIR}/cfuturesConfig.cmake"
                              INSTALL_DESTINATION "${cf_cmake_dir}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/cfuturesConfigVersion.cmake"
                                 VERSION "${PROJECT_VERSION}"
                                 COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/cfuturesConfig.cmake"
              "${PROJECT_BINARY_DIR}/cfuturesConfigVersion.cmake"
        DESTINATION "${cf_cmake_dir}")

foreach(dir LIBDIR INCLUDEDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
        set(CF_PC_${dir} "${CMAKE_INSTALL_${dir}}")
    else()
        set(CF_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
    endif()
endforeach()
set(CF_PC_PREFIX "@CF_PC_PREFIX@")
configure_file("${PROJECT_SOURCE_DIR}/cfutures.pc.in" "${PROJECT_BINARY_DIR}/cfutures.pc.in" @ONLY)
install(CODE "
    set(CF_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    configure_file(\"${PROJECT_BINARY_DIR}/cfutures.pc.in\"
                   \"${PROJECT_BINARY_DIR}/pkgconfig/cfutures.pc\" @ONLY)
")
install(FILES "${PROJECT_BINARY_DIR}/pkgconfig/cfutures.pc"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
