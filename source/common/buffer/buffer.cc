#include "source/common/buffer/buffer.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <optional>

namespace courier::buffer {
namespace {
// Writes and reads touch at most this many slices per syscall.
constexpr int kMaxIovecs = 64;
// Small slices left at the tail are topped up by copy rather than chained,
// so a stream of tiny writes does not become a chain of tiny slices.
constexpr size_t kCopyThreshold = 512;
}  // namespace

size_t Slice::append(const void* src, size_t n) {
  size_t take = std::min(n, reservable());
  std::memcpy(reserveStart(), src, take);
  end_ += take;
  return take;
}

bool IoResult::wouldBlock() const { return err == EAGAIN || err == EWOULDBLOCK; }

Slice& Buffer::tailWithRoom(size_t min_room) {
  if (slices_.empty() || slices_.back().reservable() < min_room) {
    slices_.emplace_back(std::max(Slice::kDefaultSize, min_room));
  }
  return slices_.back();
}

void Buffer::add(const void* data, size_t size) {
  const uint8_t* src = static_cast<const uint8_t*>(data);
  length_ += size;
  while (size > 0) {
    Slice& tail = (!slices_.empty() && slices_.back().reservable() > 0) ? slices_.back() : tailWithRoom(1);
    size_t n = tail.append(src, size);
    src += n;
    size -= n;
  }
}

void Buffer::move(Buffer& other) {
  if (other.length_ == 0) return;
  for (Slice& s : other.slices_) {
    if (s.size() == 0) continue;
    if (!slices_.empty() && s.size() <= kCopyThreshold && slices_.back().reservable() >= s.size()) {
      slices_.back().append(s.data(), s.size());
    } else {
      slices_.push_back(std::move(s));
    }
  }
  length_ += other.length_;
  other.slices_.clear();
  other.length_ = 0;
}

void Buffer::move(Buffer& other, size_t n) {
  n = std::min(n, other.length_);
  while (n > 0) {
    Slice& front = other.slices_.front();
    if (front.size() <= n) {
      size_t sz = front.size();
      if (!slices_.empty() && sz <= kCopyThreshold && slices_.back().reservable() >= sz) {
        slices_.back().append(front.data(), sz);
      } else {
        slices_.push_back(std::move(front));
      }
      other.slices_.pop_front();
      length_ += sz;
      other.length_ -= sz;
      n -= sz;
    } else {
      add(front.data(), n);
      front.drain(n);
      other.length_ -= n;
      n = 0;
    }
  }
}

void Buffer::drain(size_t n) {
  n = std::min(n, length_);
  length_ -= n;
  while (n > 0) {
    Slice& front = slices_.front();
    if (front.size() <= n) {
      n -= front.size();
      slices_.pop_front();
    } else {
      front.drain(n);
      n = 0;
    }
  }
  // Drop empty slices so the front always holds data.
  while (!slices_.empty() && slices_.front().size() == 0 && slices_.size() > 1) slices_.pop_front();
  if (length_ == 0 && !slices_.empty() && slices_.front().size() == 0 && slices_.front().reservable() == 0) {
    slices_.clear();
  }
}

void Buffer::copyOut(size_t start, size_t size, void* dst) const {
  assert(start + size <= length_);
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (const Slice& s : slices_) {
    if (size == 0) break;
    if (start >= s.size()) {
      start -= s.size();
      continue;
    }
    size_t take = std::min(size, s.size() - start);
    std::memcpy(out, s.data() + start, take);
    out += take;
    size -= take;
    start = 0;
  }
}

std::string Buffer::toString() const {
  std::string out(length_, '\0');
  copyOut(0, length_, out.data());
  return out;
}

ssize_t Buffer::search(std::string_view needle, size_t start) const {
  if (needle.empty()) return start <= length_ ? static_cast<ssize_t>(start) : -1;
  if (needle.size() > length_) return -1;
  // Bodies are never searched on the hot path; a linear copy-free scan is enough.
  std::string window;
  size_t offset = 0;
  for (const Slice& s : slices_) {
    size_t sz = s.size();
    if (offset + sz <= start) {
      offset += sz;
      continue;
    }
    size_t from = start > offset ? start - offset : 0;
    // Keep needle.size()-1 bytes of the previous slices so matches may straddle.
    size_t base = offset + from - window.size();
    window.append(reinterpret_cast<const char*>(s.data()) + from, sz - from);
    size_t pos = window.find(needle);
    if (pos != std::string::npos) return static_cast<ssize_t>(base + pos);
    if (window.size() >= needle.size()) window.erase(0, window.size() - (needle.size() - 1));
    offset += sz;
  }
  return -1;
}

int Buffer::fillIovecs(struct iovec* iov, int max) const {
  int n = 0;
  for (const Slice& s : slices_) {
    if (n == max) break;
    if (s.size() == 0) continue;
    iov[n].iov_base = const_cast<uint8_t*>(s.data());
    iov[n].iov_len = s.size();
    ++n;
  }
  return n;
}

IoResult Buffer::readFromFd(int fd, size_t max_bytes) {
  // Read into the tail's free space, then into up to two fresh slices: a
  // full read of 32 KiB needs no second syscall, a short one wastes nothing.
  struct iovec iov[3];
  int n = 0;
  size_t planned = 0;
  bool tail_used = false;
  if (!slices_.empty() && slices_.back().reservable() >= kCopyThreshold) {
    Slice& tail = slices_.back();
    iov[n].iov_base = tail.reserveStart();
    iov[n].iov_len = std::min(tail.reservable(), max_bytes);
    planned += iov[n].iov_len;
    ++n;
    tail_used = true;
  }
  std::optional<Slice> fresh[2];
  int fresh_count = 0;
  while (planned < max_bytes && fresh_count < 2) {
    fresh[fresh_count].emplace(Slice::kDefaultSize);
    iov[n].iov_base = fresh[fresh_count]->reserveStart();
    iov[n].iov_len = std::min(Slice::kDefaultSize, max_bytes - planned);
    planned += iov[n].iov_len;
    ++n;
    ++fresh_count;
  }
  ssize_t rc = readv(fd, iov, n);
  if (rc < 0) return {-1, errno};
  size_t left = static_cast<size_t>(rc);
  length_ += left;
  int i = 0;
  if (tail_used) {
    size_t take = std::min(left, iov[0].iov_len);
    slices_.back().commit(take);
    left -= take;
    i = 1;
  }
  for (int f = 0; f < fresh_count && left > 0; ++f, ++i) {
    size_t take = std::min(left, iov[i].iov_len);
    fresh[f]->commit(take);
    left -= take;
    slices_.push_back(std::move(*fresh[f]));
  }
  return {rc, 0, static_cast<size_t>(rc) < planned};
}

IoResult Buffer::writeToFd(int fd) {
  struct iovec iov[kMaxIovecs];
  int n = fillIovecs(iov, kMaxIovecs);
  if (n == 0) return {0, 0};
  size_t offered = 0;
  for (int i = 0; i < n; ++i) offered += iov[i].iov_len;
  ssize_t rc = writev(fd, iov, n);
  if (rc < 0) return {-1, errno};
  drain(static_cast<size_t>(rc));
  return {rc, 0, static_cast<size_t>(rc) < offered};
}

}  // namespace courier::buffer
