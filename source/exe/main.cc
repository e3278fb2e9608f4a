#include "absl/strings/str_cat.h"
#include "google/rpc/status.pb.h"
#include "llhttp.h"
#include <cstdio>
int main() { google::rpc::Status s; s.set_message("x"); std::puts(absl::StrCat("courier ", llhttp_method_name(HTTP_GET), s.DebugString()).c_str()); }
