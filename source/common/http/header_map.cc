#include "source/common/http/header_map.h"

#include <cstring>

namespace courier::http {

namespace {
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
inline bool isPseudo(std::string_view key) { return !key.empty() && key[0] == ':'; }
}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

HeaderMap::HeaderMap(std::initializer_list<std::pair<std::string_view, std::string_view>> init) {
  for (const auto& kv : init) add(kv.first, kv.second);
}

HeaderMap::HeaderMap(const HeaderMap& other) {
  for (const auto& e : other.entries_) add(e.key(), e.value());
}

HeaderMap& HeaderMap::operator=(const HeaderMap& other) {
  if (this == &other) return *this;
  // Copy out first: other may share nothing with us, but keep it simple.
  entries_.clear();
  pseudo_count_ = 0;
  byte_size_ = 0;
  inline_used_ = 0;
  overflow_.clear();
  overflow_used_ = overflow_cap_ = 0;
  for (const auto& e : other.entries_) add(e.key(), e.value());
  return *this;
}

std::string_view HeaderMap::store(std::string_view s, bool lowercase) {
  if (s.empty()) return std::string_view();
  char* dst;
  if (kInlineArena - inline_used_ >= s.size()) {
    dst = inline_arena_ + inline_used_;
    inline_used_ += s.size();
  } else {
    if (overflow_.empty() || overflow_cap_ - overflow_used_ < s.size()) {
      size_t cap = std::max<size_t>(s.size(), 2048);
      overflow_.emplace_back(new char[cap]);
      overflow_cap_ = cap;
      overflow_used_ = 0;
    }
    dst = overflow_.back().get() + overflow_used_;
    overflow_used_ += s.size();
  }
  if (lowercase) {
    for (size_t i = 0; i < s.size(); ++i) dst[i] = lower(s[i]);
  } else {
    std::memcpy(dst, s.data(), s.size());
  }
  return std::string_view(dst, s.size());
}

void HeaderMap::add(std::string_view key, std::string_view value) {
  HeaderEntry e(store(key, true), store(value, false));
  byte_size_ += key.size() + value.size();
  if (isPseudo(key)) {
    entries_.insert(entries_.begin() + pseudo_count_, e);
    ++pseudo_count_;
  } else {
    entries_.push_back(e);
  }
}

void HeaderMap::set(std::string_view key, std::string_view value) {
  size_t first = entries_.size();
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (equalsIgnoreCase(entries_[i].key_, key)) {
      first = i;
      break;
    }
  }
  if (first == entries_.size()) {
    add(key, value);
    return;
  }
  byte_size_ -= entries_[first].value_.size();
  entries_[first].value_ = store(value, false);
  byte_size_ += value.size();
  // Drop later duplicates.
  for (size_t i = entries_.size(); i-- > first + 1;) {
    if (equalsIgnoreCase(entries_[i].key_, key)) {
      byte_size_ -= entries_[i].key_.size() + entries_[i].value_.size();
      if (i < pseudo_count_) --pseudo_count_;
      entries_.erase(entries_.begin() + i);
    }
  }
}

size_t HeaderMap::remove(std::string_view key) {
  size_t removed = 0;
  for (size_t i = entries_.size(); i-- > 0;) {
    if (equalsIgnoreCase(entries_[i].key_, key)) {
      byte_size_ -= entries_[i].key_.size() + entries_[i].value_.size();
      if (i < pseudo_count_) --pseudo_count_;
      entries_.erase(entries_.begin() + i);
      ++removed;
    }
  }
  return removed;
}

const HeaderEntry* HeaderMap::get(std::string_view key) const {
  size_t i = isPseudo(key) ? 0 : pseudo_count_;
  size_t n = isPseudo(key) ? pseudo_count_ : entries_.size();
  for (; i < n; ++i) {
    if (equalsIgnoreCase(entries_[i].key_, key)) return &entries_[i];
  }
  return nullptr;
}

std::string_view HeaderMap::getValue(std::string_view key) const {
  const HeaderEntry* e = get(key);
  return e ? e->value() : std::string_view();
}

absl::InlinedVector<std::string_view, 2> HeaderMap::getAll(std::string_view key) const {
  absl::InlinedVector<std::string_view, 2> out;
  for (const auto& e : entries_) {
    if (equalsIgnoreCase(e.key_, key)) out.push_back(e.value_);
  }
  return out;
}

std::string HeaderMap::getJoined(std::string_view key) const {
  std::string out;
  bool first = true;
  for (const auto& e : entries_) {
    if (!equalsIgnoreCase(e.key_, key)) continue;
    if (!first) out.push_back(',');
    out.append(e.value_);
    first = false;
  }
  return out;
}

void HeaderMap::iterate(const std::function<bool(const HeaderEntry&)>& cb) const {
  for (const auto& e : entries_) {
    if (!cb(e)) return;
  }
}

std::string_view HeaderMap::pseudo(std::string_view key) const {
  for (size_t i = 0; i < pseudo_count_; ++i) {
    if (entries_[i].key_ == key) return entries_[i].value_;
  }
  return std::string_view();
}

int HeaderMap::status() const {
  std::string_view s = statusString();
  if (s.size() != 3) return 0;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  return v;
}

void HeaderMap::setStatus(int code) { set(headers::kStatus, std::to_string(code)); }

bool HeaderMap::operator==(const HeaderMap& other) const {
  if (entries_.size() != other.entries_.size()) return false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].key_ != other.entries_[i].key_ ||
        entries_[i].value_ != other.entries_[i].value_) {
      return false;
    }
  }
  return true;
}

std::string HeaderMap::toString() const {
  std::string out;
  for (const auto& e : entries_) {
    out.append(e.key_).append(": ").append(e.value_).push_back('\n');
  }
  return out;
}

}  // namespace courier::http
