# Cross build for 64-bit ARM (Debian's gcc-aarch64-linux-gnu + arm64 multiarch
# -dev packages); tests run under qemu-aarch64. Dynamic
# arm64 libraries come from multiarch (/usr/lib/aarch64-linux-gnu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# No -L prefix: with the cross libc under /usr/aarch64-linux-gnu, threaded
# programs hang in qemu-user here; the multiarch libc6:arm64 (pulled in by the
# arm64 -dev packages) serves /lib/ld-linux-aarch64.so.1 instead.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

