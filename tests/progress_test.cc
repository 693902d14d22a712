// The terminal progress bar (cli/progress.h): what it says is true from the first frame, and
// its bar does not jump while the figures beside it change.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "cli/progress.h"

using modelsync::cli::ProgressBar;
using namespace std::chrono_literals;

namespace {
constexpr uint64_t kMiB = 1ull << 20, kGiB = 1ull << 30;

// The columns from the start of the line to the bar's closing bracket.
size_t BarEnd(const std::string& frame) { return frame.find(']'); }
}  // namespace

TEST_CASE("a rate not known yet is drawn as unknown, never as 0 B/s") {
  const std::string frame = ProgressBar::Render("pull", 128 * kMiB, kGiB, 0, 8, -1, 100);
  INFO(frame);
  CHECK(frame.find("--/s ETA --") != std::string::npos);
  CHECK(frame.find("0 B/s") == std::string::npos);
  const std::string stalled = ProgressBar::Render("pull", 128 * kMiB, kGiB, 0, 8, 0, 100);
  CHECK(stalled.find("0 B/s ETA --") != std::string::npos);  // known, and nothing moves
}

TEST_CASE("the bar keeps its width while bytes, rate and ETA change") {
  for (int width : {60, 80, 120, 200}) {
    const size_t first = BarEnd(ProgressBar::Render("pull", 0, kGiB, 0, 8, -1, width));
    for (double rate : {-1.0, 0.0, 999.0, 1.33 * kGiB, 9.99 * 1024 * kGiB})
      for (uint64_t done : {uint64_t{0}, uint64_t{2 * 1024 + 210}, 715 * kMiB, 1023 * kMiB, kGiB}) {
        const std::string frame = ProgressBar::Render("pull", done, kGiB, done == kGiB ? 8 : 7, 8,
                                                      rate, width);
        INFO(width, " ", frame);
        CHECK(BarEnd(frame) == first);
        CHECK(static_cast<int>(frame.size()) < width);
      }
  }
}

TEST_CASE("the rate is the average so far until the first 500 ms window, then windowed") {
  ProgressBar bar("pull", /*enabled=*/false);
  const auto t0 = std::chrono::steady_clock::now();
  bar.Update(0, kGiB, 0, 8, t0);
  CHECK(bar.rate() < 0);
  bar.Update(100 * kMiB, kGiB, 0, 8, t0 + 100ms);
  CHECK(bar.rate() < 0);  // too early to say
  bar.Update(300 * kMiB, kGiB, 0, 8, t0 + 300ms);
  CHECK(bar.rate() == doctest::Approx(1000.0 * kMiB).epsilon(0.001));  // 300 MiB in 0.3 s
  bar.Update(400 * kMiB, kGiB, 0, 8, t0 + 500ms);  // the first window: 400 MiB in 0.5 s
  CHECK(bar.rate() == doctest::Approx(0.6 * 800 * kMiB + 0.4 * 1000 * kMiB).epsilon(0.001));
  bar.Update(400 * kMiB, kGiB, 0, 8, t0 + 1000ms);  // a stall is 0 in the next window
  CHECK(bar.rate() == doctest::Approx(0.4 * (0.6 * 800 + 0.4 * 1000) * kMiB).epsilon(0.001));

  // A resumed download: only what this run moved counts.
  ProgressBar resumed("pull", false);
  resumed.Update(900 * kMiB, kGiB, 0, 8, t0);
  resumed.Update(950 * kMiB, kGiB, 0, 8, t0 + 250ms);
  CHECK(resumed.rate() == doctest::Approx(200.0 * kMiB).epsilon(0.001));
}
