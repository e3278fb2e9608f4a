"""Repository rules that wrap Debian's system libraries (no downloads)."""

def _system_library_impl(ctx):
    for header in ctx.attr.headers:
        if not ctx.path("/usr/include/" + header).exists:
            fail("system library %s: /usr/include/%s is missing; run ci/do_ci.sh setup (Debian package %s)" %
                 (ctx.name, header, ctx.attr.package))
    ctx.file("BUILD.bazel", """
cc_library(
    name = "lib",
    linkopts = {linkopts},
    defines = {defines},
    visibility = ["//visibility:public"],
)
""".format(linkopts = repr(ctx.attr.linkopts), defines = repr(ctx.attr.defines)))

system_library = repository_rule(
    implementation = _system_library_impl,
    attrs = {
        "headers": attr.string_list(doc = "headers under /usr/include whose presence proves the package is installed"),
        "linkopts": attr.string_list(),
        "defines": attr.string_list(),
        "package": attr.string(doc = "the Debian package that provides it"),
    },
    local = True,
)

def _llhttp_impl(ctx):
    # Debian's node-llhttp ships the generated C parser as sources.
    for f in ["api.c", "http.c", "llhttp.c"]:
        src = ctx.path("/usr/share/llhttp/" + f)
        if not src.exists:
            fail("llhttp: /usr/share/llhttp/%s is missing; run ci/do_ci.sh setup (Debian package node-llhttp)" % f)
        ctx.symlink(src, "src/" + f)
    ctx.symlink("/usr/share/include/llhttp/llhttp.h", "include/llhttp.h")
    ctx.file("BUILD.bazel", """
cc_library(
    name = "llhttp",
    srcs = glob(["src/*.c"]),
    hdrs = ["include/llhttp.h"],
    strip_include_prefix = "include",
    copts = ["-O2", "-w"],
    visibility = ["//visibility:public"],
)
""")

llhttp_repository = repository_rule(implementation = _llhttp_impl, local = True)

def courier_dependencies():
    libs = {
        "com_google_protobuf_system": (["google/protobuf/message.h"], ["-lprotobuf"], "libprotobuf-dev"),
        "grpc_system": (["grpcpp/grpcpp.h"], ["-lgrpc++", "-lgrpc", "-lgpr"], "libgrpc++-dev"),
        "abseil_system": (["absl/status/status.h"], [
            "-labsl_status",
            "-labsl_statusor",
            "-labsl_strings",
            "-labsl_str_format_internal",
            "-labsl_cord",
            "-labsl_synchronization",
            "-labsl_time",
            "-labsl_hash",
            "-labsl_raw_hash_set",
            "-labsl_base",
            "-labsl_throw_delegate",
            "-labsl_raw_logging_internal",
            "-labsl_log_severity",
            "-labsl_int128",
            "-labsl_strings_internal",
            "-labsl_spinlock_wait",
            "-labsl_time_zone",
            "-labsl_city",
            "-labsl_low_level_hash",
        ], "libabsl-dev"),
        "nghttp2_system": (["nghttp2/nghttp2.h"], ["-lnghttp2"], "libnghttp2-dev"),
        "cares_system": (["ares.h"], ["-lcares"], "libc-ares-dev"),
        "openssl_system": (["openssl/ssl.h"], ["-lssl", "-lcrypto"], "libssl-dev"),
        "libevent_system": (["event2/event.h"], ["-levent", "-levent_pthreads"], "libevent-dev"),
        "yaml_cpp_system": (["yaml-cpp/yaml.h"], ["-lyaml-cpp"], "libyaml-cpp-dev"),
        "re2_system": (["re2/re2.h"], ["-lre2"], "libre2-dev"),
        "gtest_system": (["gtest/gtest.h", "gmock/gmock.h"], ["-lgmock", "-lgtest", "-lpthread"], "libgmock-dev"),
        "gtest_main_system": (["gtest/gtest.h"], ["-lgmock_main"], "libgmock-dev"),
        "benchmark_system": (["benchmark/benchmark.h"], ["-lbenchmark", "-lpthread"], "libbenchmark-dev"),
        "xxhash_system": (["xxhash.h"], ["-lxxhash"], "libxxhash-dev"),
    }
    for name, (headers, linkopts, package) in libs.items():
        system_library(name = name, headers = headers, linkopts = linkopts, package = package)

    # Debian builds spdlog as a shared library on the external fmt.
    system_library(
        name = "spdlog_system",
        headers = ["spdlog/spdlog.h"],
        linkopts = ["-lspdlog", "-lfmt", "-pthread"],
        defines = ["SPDLOG_SHARED_LIB", "SPDLOG_COMPILED_LIB", "SPDLOG_FMT_EXTERNAL"],
        package = "libspdlog-dev",
    )
    llhttp_repository(name = "llhttp_system")
