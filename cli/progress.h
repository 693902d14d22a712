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
  // The first value of `done` this run (bytes a resumed download already had): the rate
  // counts only what this run fetched; Finish() shows the run's average rate.
  bool started_ = false;
  uint64_t first_done_ = 0;
  std::chrono::steady_clock::time_point started_at_;
};

// Whether a command draws a progress bar: stderr and stdout are terminals (a redirected or
// piped stdout means a script is reading: no bar), TERM is not "dumb", and
// HF_HUB_DISABLE_PROGRESS_BARS (as huggingface_hub reads it) is not set to a true value.
// The bar uses no colour (NO_COLOR has nothing to turn off).
bool ProgressWanted();

}  // namespace modelsync::cli
