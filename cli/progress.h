// A one-line progress display for a terminal: bar, bytes, rate, ETA, files.
//
// Draws on stderr with '\r' redraws, at most every 100 ms, only when stderr is a terminal
// (or when forced). Finish() ends the line. Not thread-safe: call from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace modelsync::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label, bool enabled);
  ~ProgressBar();
  void Update(uint64_t done, uint64_t total, uint64_t files_done, uint64_t files_total);
  // Prints a line above the bar (the bar is redrawn after it).
  void Note(const std::string& line);
  void Finish();
  bool enabled() const { return enabled_; }

  // The text of one frame; public for tests.
  static std::string Render(const std::string& label, uint64_t done, uint64_t total,
                            uint64_t files_done, uint64_t files_total, double rate_bps,
                            int width);

 private:
  void Draw(bool force);
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  uint64_t done_ = 0, total_ = 0, files_done_ = 0, files_total_ = 0;
  double rate_ = 0;
  uint64_t rate_bytes_ = 0;
  std::chrono::steady_clock::time_point rate_at_, drawn_at_;
};

// True when stderr is a terminal and TERM is not "dumb".
bool StderrIsTerminal();

}  // namespace modelsync::cli
