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
  // The same at a given time (tests).
  void Update(uint64_t done, uint64_t total, uint64_t files_done, uint64_t files_total,
              std::chrono::steady_clock::time_point now);
  // Bytes per second this run, as drawn: the average since the first Update from 200 ms on,
  // then a moving average over windows of 500 ms; < 0 while not known (drawn "--/s", never
  // "0 B/s" for bytes that are moving).
  double rate() const { return rate_known_ ? rate_ : -1; }
  // Prints a line above the bar (the bar is redrawn after it).
  void Note(const std::string& line);
  void Finish();
  bool enabled() const { return enabled_; }

  // The text of one frame (rate_bps < 0: not known yet); public for tests. The bar's width
  // depends on `width`, `label`, `total` and `files_total` only, not on the figures that
  // change while it runs, so it does not jump as they do.
  static std::string Render(const std::string& label, uint64_t done, uint64_t total,
                            uint64_t files_done, uint64_t files_total, double rate_bps,
                            int width);

 private:
  void Draw(bool force);
  // Bytes per second since the first Update (what this run moved), at `now` > started_at_.
  double RunAverage(std::chrono::steady_clock::time_point now) const;
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  uint64_t done_ = 0, total_ = 0, files_done_ = 0, files_total_ = 0;
  double rate_ = 0;
  bool rate_known_ = false;
  bool windowed_ = false;  // rate_ is the moving average (a 500 ms window has passed)
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
