# Cross build for 64-bit ARM (Debian's gcc-aarch64-linux-gnu + arm64 multiarch
# -dev packages); tests run under qemu-aarch64. Dynamic
# arm64 libraries come from multiarch (/usr/lib/aarch64-linux-gnu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# The loader must come from the same glibc build as the libc.so.6 it loads:
# ld.so and libc share private structures (the thread stack cache among
# them). With -L /usr/aarch64-linux-gnu qemu took ld.so from the cross
# toolchain's libc6-arm64-cross (2.36-8) while libc.so.6 came from the
# multiarch libc6:arm64 (2.36-9+deb12u*), and the first pthread_create spun
# forever in glibc's stack-cache walk. The multiarch set (-L /) is
# consistent: its ld.so, libc, libpcre2 and libjansson are one release.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
