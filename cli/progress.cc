#include "cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <cstring>
#include <string>

#include "base/units.h"

namespace modelsync::cli {
namespace {

int TerminalWidth() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 80;
}

}  // namespace

bool ProgressWanted() {
  const char* term = std::getenv("TERM");
  if (term && std::strcmp(term, "dumb") == 0) return false;
  if (const char* off = std::getenv("HF_HUB_DISABLE_PROGRESS_BARS")) {
    std::string v(off);
    for (auto& ch : v) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (v == "1" || v == "ON" || v == "YES" || v == "TRUE") return false;
  }
  return ::isatty(STDERR_FILENO) && ::isatty(STDOUT_FILENO);
}

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled) {
  rate_at_ = drawn_at_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { Finish(); }

std::string ProgressBar::Render(const std::string& label, uint64_t done, uint64_t total,
                                uint64_t files_done, uint64_t files_total, double rate_bps,
                                int width) {
  char tail[160];
  std::string eta = "--";
  if (rate_bps > 1 && total > done)
    eta = FormatDuration(std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(total - done) / rate_bps * 1000)));
  const std::string rate = rate_bps < 0 ? "--" : FormatBytes(static_cast<uint64_t>(rate_bps));
  std::snprintf(tail, sizeof tail, " %3d%% %s/%s %s/s ETA %s files %llu/%llu",
                total ? static_cast<int>(done * 100 / total) : 100, FormatBytes(done).c_str(),
                FormatBytes(total).c_str(), rate.c_str(), eta.c_str(),
                static_cast<unsigned long long>(files_done),
                static_cast<unsigned long long>(files_total));
  // The widest this tail gets for this total: FormatBytes is at most 8 characters below
  // 10,000 TiB ("1023 MiB", "9.99 GiB"), an ETA at most 6 below 100 hours ("59m59s").
  const size_t files_digits = std::to_string(files_total).size();
  const size_t widest = std::max(std::strlen(tail), std::strlen(" 100% ") + 8 + 1 +
                                                        FormatBytes(total).size() + 1 + 8 +
                                                        std::strlen("/s ETA ") + 6 +
                                                        std::strlen(" files ") + 2 * files_digits + 1);
  int bar = width - static_cast<int>(widest) - static_cast<int>(label.size()) - 4;
  bar = std::clamp(bar, 10, 40);
  int fill = total ? static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * bar)
                   : bar;
  fill = std::clamp(fill, 0, bar);
  std::string s = label + " [" + std::string(static_cast<size_t>(fill), '#') +
                  std::string(static_cast<size_t>(bar - fill), ' ') + "]" + tail;
  if (static_cast<int>(s.size()) > width - 1) s.resize(static_cast<size_t>(width - 1));
  return s;
}

void ProgressBar::Update(uint64_t done, uint64_t total, uint64_t files_done,
                         uint64_t files_total) {
  Update(done, total, files_done, files_total, std::chrono::steady_clock::now());
}

void ProgressBar::Update(uint64_t done, uint64_t total, uint64_t files_done,
                         uint64_t files_total, std::chrono::steady_clock::time_point now) {
  if (!started_) {
    started_ = true;
    first_done_ = rate_bytes_ = done;
    started_at_ = rate_at_ = now;
  }
  done_ = done;
  double dt = std::chrono::duration<double>(now - rate_at_).count();
  if (dt >= 0.5) {
    double inst = static_cast<double>(done >= rate_bytes_ ? done - rate_bytes_ : 0) / dt;
    rate_ = rate_known_ ? 0.6 * inst + 0.4 * rate_ : inst;
    rate_known_ = windowed_ = true;
    rate_bytes_ = done;
    rate_at_ = now;
  } else if (!windowed_) {
    // Before the first window ends (a fast pull may be half done by then): the average so far.
    if (now - started_at_ >= std::chrono::milliseconds(200)) {
      rate_ = RunAverage(now);
      rate_known_ = true;
    }
  }
  total_ = total;
  files_done_ = files_done;
  files_total_ = files_total;
  Draw(false);
}

double ProgressBar::RunAverage(std::chrono::steady_clock::time_point now) const {
  const double run = std::chrono::duration<double>(now - started_at_).count();
  return static_cast<double>(done_ > first_done_ ? done_ - first_done_ : 0) / run;
}

void ProgressBar::Note(const std::string& line) {
  if (!enabled_) return;
  std::fprintf(stderr, "\r\033[K%s\n", line.c_str());
  drawn_ = false;
  Draw(true);
}

void ProgressBar::Draw(bool force) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - drawn_at_ < std::chrono::milliseconds(100)) return;
  drawn_at_ = now;
  std::string s = Render(label_, done_, total_, files_done_, files_total_, rate(), TerminalWidth());
  std::fprintf(stderr, "\r\033[K%s", s.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (!enabled_ || !drawn_) return;
  const auto now = std::chrono::steady_clock::now();
  if (started_ && now > started_at_) {
    rate_ = RunAverage(now);
    rate_known_ = true;
  }
  Draw(true);
  std::fputc('\n', stderr);
  drawn_ = false;
}

}  // namespace modelsync::cli
