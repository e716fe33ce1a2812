#include "client/line_buffer.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lepton::client {

LineBuffer::LineBuffer(std::istream* in, size_t block_size,
                       size_t max_line_bytes)
    : in_(in),
      block_size_(block_size < 16 ? 16 : block_size),
      max_line_bytes_(max_line_bytes) {}

bool LineBuffer::LineTooLong() {
  status_ = absl::InvalidArgumentError(
      absl::StrCat("the line is longer than ", max_line_bytes_,
                   " bytes, the longest the reader takes"));
  at_eof_ = true;
  end_ = begin_;
  return false;
}

bool LineBuffer::Refill() {
  if (at_eof_) return false;
  const size_t kept = static_cast<size_t>(end_ - begin_);
  // What is kept is the start of a line: never grow the buffer past the
  // longest line allowed (and two blocks).
  if (kept > max_line_bytes_) return LineTooLong();
  if (buffer_ == nullptr || kept + block_size_ > capacity_) {
    // A line longer than what the buffer holds: make room for it and one
    // more block. The buffer never shrinks, so this happens a few times at
    // most.
    const size_t capacity = kept + 2 * block_size_;
    // Zeroed, the padding past the capacity among them.
    auto bigger = std::make_unique<char[]>(capacity + kPadding);
    if (kept > 0) std::memcpy(bigger.get(), begin_, kept);
    buffer_ = std::move(bigger);
    capacity_ = capacity;
  } else if (kept > 0 && begin_ != buffer_.get()) {
    std::memmove(buffer_.get(), begin_, kept);
  }
  char* const data = buffer_.get();
  begin_ = data;
  end_ = data + kept;
  errno = 0;
  in_->read(data + kept, static_cast<std::streamsize>(capacity_ - kept));
  const std::streamsize n = in_->gcount();
  end_ += n;
  if (in_->bad()) {
    status_ = absl::DataLossError(absl::StrCat(
        "read error",
        errno != 0 ? absl::StrCat(": ", std::strerror(errno)) : std::string()));
    at_eof_ = true;
    end_ = begin_;  // nothing after a failed read is trusted
    return false;
  }
  if (!*in_) at_eof_ = true;  // eof (and fail) after a short read
  return n > 0;
}

bool LineBuffer::Next(absl::string_view* line) {
  if (!status_.ok()) return false;
  while (true) {
    const size_t size = static_cast<size_t>(end_ - begin_);
    const void* newline = size == 0 ? nullptr : std::memchr(begin_, '\n', size);
    const char* line_end = nullptr;
    if (newline != nullptr) {
      line_end = static_cast<const char*>(newline);
    } else if (!Refill()) {
      if (!status_.ok() || begin_ == end_) return false;
      line_end = end_;  // the last line, without a '\n'
    } else {
      continue;
    }
    absl::string_view text(begin_, static_cast<size_t>(line_end - begin_));
    if (text.size() > max_line_bytes_) return LineTooLong();
    begin_ = line_end == end_ ? end_ : line_end + 1;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    ++line_number_;
    *line = text;
    return true;
  }
}

}  // namespace lepton::client
