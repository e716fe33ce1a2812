// LineBuffer: the lines of a stream, read in large blocks into one buffer
// that is reused, so that reading a file allocates nothing per line.
//
//   LineBuffer lines(&in);
//   absl::string_view line;
//   while (lines.Next(&line)) {
//     ...  // line has no '\n' nor a trailing '\r'; valid until Next() again
//   }
//   if (!lines.status().ok()) ...  // a read error, DATA_LOSS
//
// Lines end at '\n'; the last one may end at the end of the stream instead.
// A line longer than the buffer grows it (to the longest line plus a block),
// up to `max_line_bytes` (kMaxLineBytes, 1 GiB, by default): a longer line
// is an error (INVALID_ARGUMENT) before the buffer grows past that, so no
// input, a file without a single '\n' among them, takes more memory.
// line_number() is the 1-based number of the line Next() returned last.
//
// Thread safety: none; one thread uses a LineBuffer.
#ifndef LEPTON_CLIENT_LINE_BUFFER_H_
#define LEPTON_CLIENT_LINE_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lepton::client {

class LineBuffer {
 public:
  // The longest line taken by default. At two bytes or more a number ("0,"),
  // a longer line holds more than the 2 GiB of floats that the largest gRPC
  // message can carry.
  static constexpr size_t kMaxLineBytes = size_t{1} << 30;
  static constexpr size_t kDefaultBlockSize = size_t{1} << 20;

  // Reads `in` (not owned; it must outlive this) `block_size` bytes at a
  // time.
  explicit LineBuffer(std::istream* in, size_t block_size = kDefaultBlockSize,
                      size_t max_line_bytes = kMaxLineBytes);

  // The next line into *line: true, or false at the end of the stream or
  // after a read error (then status() says which line could not be read).
  bool Next(absl::string_view* line);

  int64_t line_number() const { return line_number_; }
  // How far past a line's end memory may be read (decimal_scan.h's
  // ScanFloatWide loads 16 bytes at a time): the buffer keeps kPadding
  // bytes after what it holds. Valid until Next() again.
  const char* readable_end() const {
    return buffer_.get() + capacity_ + kPadding;
  }
  static constexpr size_t kPadding = 64;
  // OK; DATA_LOSS "read error[: strerror]" once a read failed;
  // INVALID_ARGUMENT once a line was longer than max_line_bytes.
  const absl::Status& status() const { return status_; }

 private:
  // Moves the unread bytes to the front and reads more after them; false
  // when nothing more could be read.
  bool Refill();

  // The line being read, [begin_, end_), is longer than the limit: sets
  // status_ and returns false.
  bool LineTooLong();

  std::istream* const in_;
  const size_t block_size_;
  const size_t max_line_bytes_;
  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
  const char* begin_ = nullptr;  // the next unread byte
  const char* end_ = nullptr;    // one past the last byte read
  bool at_eof_ = false;
  int64_t line_number_ = 0;
  absl::Status status_;
};

}  // namespace lepton::client

#endif  // LEPTON_CLIENT_LINE_BUFFER_H_
