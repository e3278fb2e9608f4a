// A codec-neutral HTTP header map: an ordered list of (key, value) entries
// with keys lowercased and values kept as received. Pseudo-headers (":method",
// ":path", ":authority", ":scheme", ":status", ":protocol") live at the front
// of the list, as in Envoy, so the fast accessors scan only that short prefix.
// Key and value bytes live in a per-map arena (an inline block, then chained
// overflow blocks that never move), so adding a header does not allocate in
// the common case and the string_views handed out stay valid until the map
// is destroyed or the entry is removed/replaced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"

namespace courier::http {

class HeaderEntry {
 public:
  HeaderEntry(std::string_view key, std::string_view value) : key_(key), value_(value) {}
  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }

 private:
  friend class HeaderMap;
  std::string_view key_;
  std::string_view value_;
};

namespace headers {
inline constexpr std::string_view kMethod = ":method";
inline constexpr std::string_view kPath = ":path";
inline constexpr std::string_view kAuthority = ":authority";
inline constexpr std::string_view kScheme = ":scheme";
inline constexpr std::string_view kStatus = ":status";
inline constexpr std::string_view kProtocol = ":protocol";
}  // namespace headers

// True if a and b are equal ignoring ASCII case.
bool equalsIgnoreCase(std::string_view a, std::string_view b);

class HeaderMap {
 public:
  using Entries = absl::InlinedVector<HeaderEntry, 16>;

  HeaderMap() = default;
  HeaderMap(std::initializer_list<std::pair<std::string_view, std::string_view>> init);
  // Copies entries into a fresh arena.
  HeaderMap(const HeaderMap& other);
  HeaderMap& operator=(const HeaderMap& other);
  // Moving copies too (string_views point into the inline arena).
  HeaderMap(HeaderMap&& other) : HeaderMap(static_cast<const HeaderMap&>(other)) {}
  HeaderMap& operator=(HeaderMap&& other) { return *this = static_cast<const HeaderMap&>(other); }
  virtual ~HeaderMap() = default;

  // Appends (duplicates are kept). The key is lowercased. Pseudo-headers are
  // placed after the existing pseudo-headers, before regular headers.
  void add(std::string_view key, std::string_view value);
  // Replaces every entry named key with one entry (at the first one's place).
  void set(std::string_view key, std::string_view value);
  // Removes every entry named key; returns how many were removed.
  size_t remove(std::string_view key);
  // First entry named key (case-insensitive), or nullptr.
  const HeaderEntry* get(std::string_view key) const;
  bool has(std::string_view key) const { return get(key) != nullptr; }
  // Value of the first entry named key, or "" if none.
  std::string_view getValue(std::string_view key) const;
  // All values named key, in order.
  absl::InlinedVector<std::string_view, 2> getAll(std::string_view key) const;
  // All values named key joined with "," (Envoy's join for repeated headers).
  std::string getJoined(std::string_view key) const;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // Sum of key and value lengths over all entries.
  size_t byteSize() const { return byte_size_; }

  Entries::const_iterator begin() const { return entries_.begin(); }
  Entries::const_iterator end() const { return entries_.end(); }
  void iterate(const std::function<bool(const HeaderEntry&)>& cb) const;

  // Fast pseudo-header accessors ("" when absent).
  std::string_view method() const { return pseudo(headers::kMethod); }
  std::string_view path() const { return pseudo(headers::kPath); }
  std::string_view host() const { return pseudo(headers::kAuthority); }
  std::string_view scheme() const { return pseudo(headers::kScheme); }
  std::string_view protocol() const { return pseudo(headers::kProtocol); }
  std::string_view statusString() const { return pseudo(headers::kStatus); }
  // :status as a number, or 0 if absent or not a 3-digit number.
  int status() const;
  void setStatus(int code);

  bool operator==(const HeaderMap& other) const;
  bool operator!=(const HeaderMap& other) const { return !(*this == other); }
  // "key: value\n" lines, for test failure messages.
  std::string toString() const;

 private:
  std::string_view store(std::string_view s, bool lowercase);
  std::string_view pseudo(std::string_view key) const;

  static constexpr size_t kInlineArena = 512;
  Entries entries_;
  size_t pseudo_count_ = 0;
  size_t byte_size_ = 0;
  char inline_arena_[kInlineArena];
  size_t inline_used_ = 0;
  std::vector<std::unique_ptr<char[]>> overflow_;
  size_t overflow_used_ = 0;
  size_t overflow_cap_ = 0;
};

// Types for the three uses; one class underneath.
class RequestHeaderMap : public HeaderMap {
 public:
  using HeaderMap::HeaderMap;
};
class ResponseHeaderMap : public HeaderMap {
 public:
  using HeaderMap::HeaderMap;
};
class TrailerMap : public HeaderMap {
 public:
  using HeaderMap::HeaderMap;
};

using HeaderMapPtr = std::unique_ptr<HeaderMap>;

}  // namespace courier::http
