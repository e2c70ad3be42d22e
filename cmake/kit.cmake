# The box kit: what `cmake --install` adds so that a box can be written and
# built outside this tree (docs/writing-a-box.md):
#   lib/cmake/hakmem/     find_package(hakmem): hakmem::box_api, hakmem_add_box()
#   lib/pkgconfig/hakmem.pc  Cflags for include/, variables boxdir, hakmem, ...
# The headers, libhakmem.so, the boxes, the configs and the hakmem CLI are
# installed by their own folders' rules; this file only adds the two ways
# a build system finds them. The build tree gets a CMake package too
# (build/lib/cmake/hakmem), so a box can be built against a build of hakmem
# with -DCMAKE_PREFIX_PATH=build, before anything is installed.
include(CMakePackageConfigHelpers)

set(HAKMEM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/hakmem)
set(HAKMEM_INSTALL_PKGCONFIGDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The ABI version a kit user builds against, read from the header itself.
file(STRINGS ${PROJECT_SOURCE_DIR}/include/box_api/hakmem_box.h abi_line
     REGEX "^#define HAK_BOX_ABI_VERSION ")
string(REGEX REPLACE "^#define HAK_BOX_ABI_VERSION ([0-9]+).*" "\\1" HAKMEM_BOX_ABI_VERSION "${abi_line}")

# Where hakmem_add_box() installs an out-of-tree box, relative to that
# project's own prefix: beside the stock boxes when both prefixes agree.
set(HAKMEM_KIT_BOX_INSTALL_DIR ${HAKMEM_INSTALL_LIBDIR})

set(kit_dir ${CMAKE_BINARY_DIR}/kit)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/hakmemConfig.cmake.in
  ${kit_dir}/hakmemConfig.cmake
  INSTALL_DESTINATION ${HAKMEM_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR HAKMEM_INSTALL_LIBDIR HAKMEM_INSTALL_CONFIGDIR
  NO_CHECK_REQUIRED_COMPONENTS_MACRO)
# 0.x: every 0.y kit builds boxes for the same ABI; the host checks the ABI
# version of each box when it loads it anyway.
write_basic_package_version_file(${kit_dir}/hakmemConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${kit_dir}/hakmemConfig.cmake ${kit_dir}/hakmemConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/HakmemBox.cmake ${PROJECT_SOURCE_DIR}/cmake/BoxArchive.cmake
        DESTINATION ${HAKMEM_INSTALL_CMAKEDIR})

# The same package for the build tree: headers and configs from the source,
# the CLI and the boxes from the build.
function(hakmem_kit_build_tree_package)
  set(dir ${CMAKE_BINARY_DIR}/lib/cmake/hakmem)
  set(CMAKE_INSTALL_INCLUDEDIR ${PROJECT_SOURCE_DIR}/include)
  set(CMAKE_INSTALL_BINDIR ${CMAKE_RUNTIME_OUTPUT_DIRECTORY})
  set(HAKMEM_INSTALL_LIBDIR ${CMAKE_LIBRARY_OUTPUT_DIRECTORY})
  set(HAKMEM_INSTALL_CONFIGDIR ${PROJECT_SOURCE_DIR}/configs)
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/hakmemConfig.cmake.in ${dir}/hakmemConfig.cmake
    INSTALL_DESTINATION ${dir}
    INSTALL_PREFIX ${CMAKE_BINARY_DIR}
    PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR HAKMEM_INSTALL_LIBDIR HAKMEM_INSTALL_CONFIGDIR
    NO_CHECK_REQUIRED_COMPONENTS_MACRO)
  configure_file(${kit_dir}/hakmemConfigVersion.cmake ${dir}/hakmemConfigVersion.cmake COPYONLY)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/HakmemBox.cmake ${dir}/HakmemBox.cmake COPYONLY)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/BoxArchive.cmake ${dir}/BoxArchive.cmake COPYONLY)
endfunction()
hakmem_kit_build_tree_package()

# pkg-config: relocatable (prefix found from the .pc file's own folder), so
# `cmake --install build --prefix ANYWHERE` gives a working file.
file(RELATIVE_PATH HAKMEM_PC_PREFIX_FROM_PCDIR
     ${CMAKE_INSTALL_PREFIX}/${HAKMEM_INSTALL_PKGCONFIGDIR} ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" HAKMEM_PC_PREFIX_FROM_PCDIR "${HAKMEM_PC_PREFIX_FROM_PCDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/hakmem.pc.in ${kit_dir}/hakmem.pc @ONLY)
install(FILES ${kit_dir}/hakmem.pc DESTINATION ${HAKMEM_INSTALL_PKGCONFIGDIR})
