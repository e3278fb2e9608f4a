// A byte queue made of chained slices: appends go to the tail slice, moves
// between buffers pass slices without copying, and socket I/O uses readv and
// writev straight into and out of the slices.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>
#include <memory>
#include <string>
#include <string_view>

namespace courier::buffer {

// One contiguous block: [data_, data_+size_) is readable, the rest up to
// capacity_ is free for appends.
class Slice {
 public:
  static constexpr size_t kDefaultSize = 16 * 1024;

  explicit Slice(size_t capacity) : storage_(new uint8_t[capacity]), capacity_(capacity) {}

  uint8_t* data() { return storage_.get() + start_; }
  const uint8_t* data() const { return storage_.get() + start_; }
  size_t size() const { return end_ - start_; }
  size_t reservable() const { return capacity_ - end_; }
  uint8_t* reserveStart() { return storage_.get() + end_; }
  void commit(size_t n) { end_ += n; }
  void drain(size_t n) { start_ += n; }
  size_t append(const void* src, size_t n);
  // Gives the memory back; the slice is then empty and unusable.
  void release() {
    storage_.reset();
    capacity_ = start_ = end_ = 0;
  }

 private:
  std::unique_ptr<uint8_t[]> storage_;
  size_t capacity_;
  size_t start_ = 0;
  size_t end_ = 0;
};

// Result of a socket operation: bytes moved, or the errno that stopped it
// (EAGAIN means "come back when the socket is ready").
struct IoResult {
  ssize_t bytes = 0;
  int err = 0;
  // The kernel moved fewer bytes than were offered: on a stream socket the
  // receive queue is empty (read) or the send queue is full (write), so the
  // next call would only say EAGAIN.
  bool partial = false;
  bool wouldBlock() const;
};

// The slices of a buffer, oldest first: a vector with a moving head. Unlike
// std::deque it allocates nothing until the first slice, and buffers are
// made and dropped on every request.
class SliceQueue {
 public:
  bool empty() const { return head_ == slices_.size(); }
  size_t size() const { return slices_.size() - head_; }
  Slice& front() { return slices_[head_]; }
  Slice& back() { return slices_.back(); }
  const Slice& back() const { return slices_.back(); }
  void push_back(Slice&& s) {
    compact();
    slices_.push_back(std::move(s));
  }
  template <class... Args>
  void emplace_back(Args&&... args) {
    compact();
    slices_.emplace_back(std::forward<Args>(args)...);
  }
  void pop_front() {
    slices_[head_].release();
    if (++head_ == slices_.size()) clear();
  }
  void clear() {
    slices_.clear();
    head_ = 0;
  }
  Slice* begin() { return slices_.data() + head_; }
  Slice* end() { return slices_.data() + slices_.size(); }
  const Slice* begin() const { return slices_.data() + head_; }
  const Slice* end() const { return slices_.data() + slices_.size(); }

 private:
  // Drops released slots at the front once they are half the vector.
  void compact() {
    if (head_ > 0 && head_ * 2 >= slices_.size()) {
      slices_.erase(slices_.begin(), slices_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  std::vector<Slice> slices_;
  size_t head_ = 0;
};

class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&&) = default;
  Buffer& operator=(Buffer&&) = default;

  size_t length() const { return length_; }
  bool empty() const { return length_ == 0; }

  void add(const void* data, size_t size);
  void add(std::string_view s) { add(s.data(), s.size()); }
  // Moves all bytes of other to the end of this buffer, handing over slices.
  void move(Buffer& other);
  // Moves the first n bytes of other.
  void move(Buffer& other, size_t n);
  void drain(size_t n);
  // Copies [start, start+size) into dst; the range must lie within the buffer.
  void copyOut(size_t start, size_t size, void* dst) const;
  std::string toString() const;
  // Offset of the first occurrence of needle at or after start, or -1.
  ssize_t search(std::string_view needle, size_t start = 0) const;

  size_t sliceCount() const { return slices_.size(); }
  // Fills up to max iovecs with the readable slices; returns how many.
  int fillIovecs(struct iovec* iov, int max) const;

  // readv into free tail space plus fresh slices, at most max_bytes.
  IoResult readFromFd(int fd, size_t max_bytes);
  // writev of as many slices as the kernel takes; drains what was written.
  IoResult writeToFd(int fd);

 private:
  Slice& tailWithRoom(size_t min_room);

  SliceQueue slices_;
  size_t length_ = 0;
};

}  // namespace courier::buffer
