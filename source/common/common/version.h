// Courier's version, reported by --version, /server_info and server.version.
#pragma once

namespace courier {
inline constexpr char kCourierVersion[] = "0.1.0";
}  // namespace courier
