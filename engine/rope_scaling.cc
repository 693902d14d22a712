#include "engine/rope_scaling.h"

#include <algorithm>
#include <cmath>

namespace modelsync::engine {
namespace {

constexpr double kPi = 3.14159265358979323846;

double Wavelength(double base, uint64_t i, uint64_t head_dim) {
  return 2 * kPi * std::pow(base, static_cast<double>(2 * i) / static_cast<double>(head_dim));
}

bool Matches(const std::vector<double>& want, const std::vector<float>& got) {
  for (size_t i = 0; i < got.size(); ++i)
    if (std::abs(want[i] - got[i]) > 1e-5 * std::max(1.0, std::abs(want[i]))) return false;
  return true;
}

}  // namespace

std::vector<double> Llama3RopeFactors(const RopeScaling& r, double base, uint64_t head_dim) {
  const double old = static_cast<double>(r.original_max_position_embeddings);
  const double low_wl = old / r.low_freq_factor, high_wl = old / r.high_freq_factor;
  std::vector<double> out;
  for (uint64_t i = 0; i < head_dim / 2; ++i) {
    const double wl = Wavelength(base, i, head_dim);
    if (wl < high_wl) {
      out.push_back(1);
    } else if (wl > low_wl) {
      out.push_back(r.factor);
    } else {
      const double s = (old / wl - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
      out.push_back(1 / ((1 - s) / r.factor + s));
    }
  }
  return out;
}

Result<RopeScaling> Llama3RopeScaling(const std::vector<float>& f, double base, uint64_t head_dim,
                                      const std::string& what) {
  if (head_dim < 2 || f.size() != head_dim / 2)
    return Status::InvalidArgument(what + ": rope_freqs.weight has " + std::to_string(f.size()) +
                                   " values, not head_dim/2 = " + std::to_string(head_dim / 2));
  for (float v : f)
    if (!std::isfinite(v) || v < 1)
      return Status::InvalidArgument(what + ": rope_freqs.weight holds a value below 1 or not finite: "
                                            "not Llama 3 rope scaling");
  const double factor = *std::max_element(f.begin(), f.end());
  std::vector<RopeScaling> candidates;
  // The values between 1 and factor: s_i = (1/f_i - 1/factor) / (1 - 1/factor) is linear in
  // x_i = 1/w_i: s = a x + b with a = old/(high - low), b = -low/(high - low).
  std::vector<std::pair<double, double>> pts;
  for (uint64_t i = 0; i < f.size(); ++i)
    if (f[i] > 1 + 1e-6 && f[i] < factor * (1 - 1e-6))
      pts.emplace_back(1 / Wavelength(base, i, head_dim), (1 / f[i] - 1 / factor) / (1 - 1 / factor));
  if (factor > 1 && pts.size() >= 2) {
    const auto [x1, s1] = pts.front();
    const auto [x2, s2] = pts.back();
    const double a = (s2 - s1) / (x2 - x1), b = s1 - a * x1;
    if (b < 0 && a > 0) {
      RopeScaling r;
      r.factor = factor;
      r.low_freq_factor = 1;
      r.high_freq_factor = std::round((1 - 1 / b) * 1000) / 1000;
      r.original_max_position_embeddings = static_cast<uint64_t>(std::llround(-a / b));
      candidates.push_back(r);
    }
  }
  candidates.push_back({factor, 1, 4, 8192});
  for (const auto& r : candidates)
    if (r.high_freq_factor > r.low_freq_factor && r.original_max_position_embeddings > 0 &&
        Matches(Llama3RopeFactors(r, base, head_dim), f))
      return r;
  return Status::InvalidArgument(what + ": rope_freqs.weight is not what Llama 3 rope scaling "
                                        "(factor, low/high frequency factors, original context) "
                                        "gives for any parameters the converter can recover: "
                                        "nothing was written");
}

}  // namespace modelsync::engine
