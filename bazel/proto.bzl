"""C++ code generation for the api/ protos with Debian's protoc."""

def courier_cc_proto(name, srcs, visibility = None):
    """Generates .pb.{h,cc} for all srcs in one protoc run and wraps them in a cc_library."""
    pkg = native.package_name()
    hdrs = [s[:-len(".proto")] + ".pb.h" for s in srcs]
    ccs = [s[:-len(".proto")] + ".pb.cc" for s in srcs]
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = hdrs + ccs,
        cmd = "/usr/bin/protoc -I{pkg} -I/usr/include --cpp_out=$(GENDIR)/{pkg} $(SRCS)".format(pkg = pkg),
        message = "protoc " + pkg,
    )
    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        includes = ["."],
        copts = ["-w"],
        # Types reached only through Any (typed_config, config_dump) must be
        # in the binary even when no code names them.
        alwayslink = True,
        deps = ["@com_google_protobuf_system//:lib"],
        visibility = visibility,
    )

def courier_grpc_proto(name, srcs, deps, visibility = None):
    """Generates gRPC C++ stubs (.grpc.pb.{h,cc}) for the services in srcs.

    The messages themselves come from deps (a courier_cc_proto target built
    from the same package), so this only adds the service classes.
    """
    pkg = native.package_name()
    hdrs = [s[:-len(".proto")] + ".grpc.pb.h" for s in srcs]
    ccs = [s[:-len(".proto")] + ".grpc.pb.cc" for s in srcs]
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = hdrs + ccs,
        cmd = ("/usr/bin/protoc -I{pkg} -I/usr/include --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin " +
               "--grpc_out=$(GENDIR)/{pkg} $(SRCS)").format(pkg = pkg),
        message = "protoc grpc " + pkg,
    )
    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        includes = ["."],
        copts = ["-w"],
        deps = deps + ["@grpc_system//:lib", "@com_google_protobuf_system//:lib"],
        visibility = visibility,
    )
