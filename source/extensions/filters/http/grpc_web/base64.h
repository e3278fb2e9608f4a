// Streaming base64 for gRPC-Web text mode: the request body arrives as base64
// in arbitrary chunks (possibly several padded segments back to back) and the
// response body leaves as base64 chunk by chunk.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace courier::extensions::grpc_web {

// Decodes whole 4-character groups of in into out (each group may carry its
// own padding); the incomplete tail is left in in. False on a bad character.
bool base64DecodeGroups(std::string& in, std::string& out);

// Encodes whole 3-byte groups of in into out; with final, the rest too (with
// padding). What is not encoded stays in in.
void base64EncodeGroups(std::string& in, std::string& out, bool final);

}  // namespace courier::extensions::grpc_web
